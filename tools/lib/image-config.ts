// An app's image settings (assembly/apps/<app>/app.json, optional) and the xl domain
// configuration rendered from them (images/<app>.xl).
//
//   { "memory": 32, "cmdline": "oob", "disk": false, "vif": false, "native": ["sqlite"], "optimize": "speed" }
//
// Every key is optional; unknown keys are errors, so a typo never passes silently.
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { APPS_DIR, ROOT } from "./paths.ts";
import { NativeName, parseNativeSelection } from "./native.ts";

export interface AppConfig {
  /** MiB of RAM for the domain. */
  memory: number;
  /** The command line (xl `extra`): boot.cmdline() / boot.args() in the app. */
  cmdline: string;
  /** Attach a raw disk image (images/<app>.disk) as xvda. */
  disk: boolean;
  /** Attach a network interface on the bridge xenbr0. */
  vif: boolean;
  /** The native libraries linked into the app's native module (tools/lib/native.ts), in link
   * order: the app imports their functions from module "native" and shares that module's
   * linear memory (sqlite/README.md, lwip/README.md). Empty: no native module. */
  native: NativeName[];
  /** What the app's code is optimized for: "speed" (gcc -O2 for its wasm2c C) or "size" (-Os,
   * like Unikraft's OPTIMIZE_SIZE). asc stays at -O3 either way: its shrink levels inline
   * less, which made echo's image 8 KB larger, not smaller. */
  optimize: "speed" | "size";
}

export const DEFAULT_CONFIG: AppConfig = { memory: 32, cmdline: "", disk: false, vif: false, native: [], optimize: "speed" };
export const MIN_MEMORY_MIB = 8; // the image, its stack and a few wasm pages
export const MAX_MEMORY_MIB = 65536;
export const MAX_CMDLINE = 1023; // Xen's MAX_GUEST_CMDLINE less the NUL

export class ConfigError extends Error {}

export function configPath(app: string): string {
  return join(APPS_DIR, app, "app.json");
}

/** Reads and validates app.json; defaults when there is none. Throws ConfigError naming the file and key. */
export function loadAppConfig(app: string): AppConfig {
  const file = configPath(app);
  if (!existsSync(file)) return { ...DEFAULT_CONFIG };
  return parseAppConfig(readFileSync(file, "utf8"), relative(ROOT, file));
}

export function parseAppConfig(text: string, where: string): AppConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e: any) {
    throw new ConfigError(`${where}: not valid JSON (${e.message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new ConfigError(`${where}: must be a JSON object like {"memory": 32}`);
  const cfg = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(raw)) {
    const bad = (what: string) => new ConfigError(`${where}: "${key}" must be ${what}, got ${JSON.stringify(value)?.slice(0, 80)}`);
    switch (key) {
      case "memory":
        if (typeof value !== "number" || !Number.isInteger(value) || value < MIN_MEMORY_MIB || value > MAX_MEMORY_MIB)
          throw bad(`an integer number of MiB from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB}`);
        cfg.memory = value;
        break;
      case "cmdline":
        // xl's config strings cannot escape quotes; control characters have no business here.
        if (typeof value !== "string" || /["\\\x00-\x1f\x7f]/.test(value) || Buffer.byteLength(value) > MAX_CMDLINE)
          throw bad(`a string of at most ${MAX_CMDLINE} bytes without quotes, backslashes or control characters`);
        cfg.cmdline = value;
        break;
      case "disk":
      case "vif":
        if (typeof value !== "boolean") throw bad("true or false");
        cfg[key] = value;
        break;
      case "native":
        try {
          cfg.native = parseNativeSelection(value, where);
        } catch (e) {
          throw new ConfigError((e as Error).message);
        }
        break;
      case "optimize":
        if (value !== "speed" && value !== "size") throw bad(`"speed" or "size"`);
        cfg.optimize = value;
        break;
      case "sqlite":
        // The key before native modules: one way to say it, so no alias.
        throw new ConfigError(
          `${where}: "sqlite" is no longer a key: write "native": ["sqlite"] (app.json "native" selects the native modules)`,
        );
      default:
        throw new ConfigError(`${where}: unknown key "${key.slice(0, 80)}" (known: ${Object.keys(DEFAULT_CONFIG).join(", ")})`);
    }
  }
  return cfg;
}

/**
 * The xl configuration. Paths are absolute on this machine; the test bed rewrites them
 * when it copies the files into dom0. A crashed domain is kept (on_crash = "preserve")
 * so its state and console can be inspected; a reboot request ends the domain
 * (on_reboot = "destroy"): a unikernel that asks to reboot is restarted by whoever
 * runs it, not silently by xl, and tests see the request as the shutdown reason.
 */
export function renderXl(app: string, cfg: AppConfig, kernelPath: string, diskPath: string): string {
  const lines = [
    `# Generated by npm run build:image -- ${app}; edit assembly/apps/${app}/app.json instead.`,
    `name = "${app}"`,
    `type = "pv"`,
    `kernel = "${kernelPath}"`,
    `memory = ${cfg.memory}`,
    `vcpus = 1`,
    `extra = "${cfg.cmdline}"`,
    `on_poweroff = "destroy"`,
    `on_reboot = "destroy"`,
    `on_crash = "preserve"`,
  ];
  if (cfg.disk) lines.push(`disk = [ 'format=raw, vdev=xvda, access=rw, target=${diskPath}' ]`);
  if (cfg.vif) lines.push(`vif = [ 'bridge=xenbr0' ]`);
  return lines.join("\n") + "\n";
}
