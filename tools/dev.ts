// npm run dev -- <app> [args...]   run an app in the Node harness
// npm run dev -- --wasm FILE [args...]   run a given wasm module
//
// The app is (re)built first when its wasm is missing or older than any source.
// The console goes to stdout; the exit code is the guest's outcome
// (tools/lib/outcome.ts): 0 poweroff, 2 crash, 3 reboot, 124 hang, 1 host error.
import { writeSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, checkApp, wasmPath, UsageError } from "./lib/paths.ts";
import { parseCommandLine, runCli } from "./lib/cli.ts";
import { compileApp } from "./lib/asc.ts";
import { loadAppConfig } from "./lib/image-config.ts";
import { buildNative } from "./lib/native.ts";
import { runWasm, HarnessError } from "./harness/run.ts";
import { EXIT_CODE } from "./lib/outcome.ts";

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

const USAGE = "usage: npm run dev -- <app> [args...]  |  npm run dev -- --wasm FILE [args...]";
const OPTIONS = { wasm: { type: "string" }, help: { type: "boolean", short: "h" } } as const;

/** dev's own options come first; everything after the app (or after --wasm FILE) is the guest's command line. */
function splitArgv(argv: string[]): { own: string[]; guest: string[] } {
  const { tokens } = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === "positional") return { own: argv.slice(0, t.index + 1), guest: argv.slice(t.index + 1) };
    if (t.kind === "option" && t.name === "wasm") {
      const end = t.index + (t.inlineValue || t.value === undefined ? 1 : 2);
      return { own: argv.slice(0, end), guest: argv.slice(end) };
    }
  }
  return { own: argv, guest: [] };
}

async function main(): Promise<number> {
  const { own, guest: rest } = splitArgv(process.argv.slice(2));
  const { values, positionals } = parseCommandLine({ args: own, options: OPTIONS, allowPositionals: true });
  if (values.help) return (console.log(USAGE), 0);
  let wasm: string;
  let name: string;
  if (values.wasm !== undefined) {
    if (!values.wasm) throw new UsageError("--wasm needs a file");
    if (positionals.length) throw new UsageError(`--wasm ${values.wasm} runs a module, not app ${positionals[0]}`);
    [wasm, name] = [values.wasm, "guest"];
  } else {
    name = checkApp(positionals[0]);
    wasm = wasmPath(name);
    let built = 0;
    try {
      built = statSync(wasm).mtimeMs;
    } catch {}
    const sources = Math.max(newestSource(join(ROOT, "assembly")), statSync(join(ROOT, "asconfig.json")).mtimeMs);
    if (built < sources) await compileApp(name, "release");
    // runWasm is synchronous: the native module (build/native-<selection>.wasm) must exist first.
    const native = loadAppConfig(name).native;
    if (native.length) await buildNative(native);
  }
  const r = runWasm({ wasm, name, cmdline: rest.join(" "), onConsole: (b) => writeSync(1, b) });
  process.stderr.write(`[harness] ${name}: ${r.detail} (exit ${r.exitCode}, ${r.ms.toFixed(1)} ms)\n`);
  return r.exitCode;
}

runCli("dev", USAGE, main, (e) => {
  process.stderr.write(`dev: ${e instanceof HarnessError ? e.message : ((e as Error)?.stack ?? e)}\n`);
  return EXIT_CODE["host-error"];
});
