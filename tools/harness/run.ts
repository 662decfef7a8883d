// Runs a unikernel's wasm module in Node against an emulated Xen domain
// (npm run dev, and the harness tests). The module is the very file that
// `npm run build:image` translates: nothing here needs a special build.
import { readFileSync } from "node:fs";
import { Domain, DomainConfig, SHUTDOWN } from "./domain.ts";
import { ABI_IMPORTS, ABI_MODULE, abiImports, DeadlockSignal, GuestFault, ShutdownSignal } from "./abi.ts";
import { moduleSignatures } from "./signatures.ts";
import { instantiateNative, loadNative, NATIVE_MODULE, NativeModule, SHARED_MEMORY } from "./native.ts";
import { checkNativeLink, checkNativeSelection, inferSelection } from "../lib/native.ts";
import { asTrap, formatTrap, MAX_FRAMES, Trap } from "./trap.ts";
import { EXIT_CODE, Outcome } from "../lib/outcome.ts";
import { Disk, DiskOptions, PowerCutSignal, VbdBackend, vbdDevid } from "./blkback.ts";
import { VifBackend, VifOptions } from "./netback.ts";
import {
  DEFAULT_MEMORY_MIB,
  estimateImageBytes,
  IO_TABLE_FRAMES,
  maxLinearPages,
  memoryPlan,
  MemoryPlan,
  withMemoryMaximum,
} from "./memory.ts";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { APPS_DIR, BUILD_DIR } from "../lib/paths.ts";
import { AppConfig, loadAppConfig } from "../lib/image-config.ts";

/** A problem with the module itself or the host: the guest never ran (exit code 1). */
export class HarnessError extends Error {}

export interface RunOptions extends Partial<DomainConfig> {
  /** Path of the .wasm file, or its bytes. */
  wasm: string | Uint8Array;
  /** Memory of the domain in MiB (xl `memory =`): default, the app's app.json "memory" for
   * build/<app>.wasm (as its image gets), else 32. memory.grow refuses where the shim would. */
  memoryMiB?: number;
  /** Called with the domain before the guest starts: install backends, hooks, xenstore keys. */
  setup?: (dom: Domain) => void;
  /** Virtual disks, attached as xvda, xvdb, ... (device/vbd/51712, 51728, ...); a Disk keeps its contents across runs. */
  disks?: (Disk | DiskOptions)[];
  /** Virtual network interfaces, attached as device/vif/0, 1, ... (netback.ts: the peer on the wire, faults). */
  vifs?: VifOptions[];
  /** The native module for an app that imports from module "native" (path or bytes); default
   * build/native-<selection>.wasm (npm run build makes it), the selection being app.json's
   * "native" for build/<app>.wasm, else the libraries whose functions the module imports. */
  native?: string | Uint8Array;
  /**
   * The kernel image's load size in KiB (ELF, .bss included; `npm run build:image` prints
   * it): it is not the guest's. Default: estimated from the wasm (memory.ts). With
   * memoryMiB (default 32, as xl), it fixes where memory.grow refuses (tools/harness/memory.ts).
   */
  imageKiB?: number;
}

export interface RunResult {
  outcome: Outcome;
  exitCode: number;
  /** Everything the guest wrote to its console, plus the host's trap or deadlock report. */
  console: string;
  /** Set when the guest ended with a wasm trap. */
  trap?: Trap;
  /** One line saying how the run ended ("poweroff", "crash: wasm trap: ..."). */
  detail: string;
  /** Wall time from instantiation to shutdown. */
  ms: number;
  /** The emulated domain, for assertions on its backends after the run. */
  domain: Domain;
}

interface Loaded {
  mod: WebAssembly.Module;
  /** The domain's memory in frames, as the shim counts it. */
  plan?: MemoryPlan;
  /** The most wasm pages memory.grow reaches (the module's memory maximum), when limited. */
  maxPages?: number;
  /** Set when the module imports from "native": the native module it links with. */
  native?: NativeModule;
  /** Pages the app's imported memory must have (its declared minimum). */
  memoryPages: number;
}

/** Compiles and checks a module against ABI v1; throws HarnessError naming the problem. */
export function loadModule(wasm: string | Uint8Array, native?: string | Uint8Array): WebAssembly.Module {
  return prepare(wasm, native).mod;
}

/** Compiled modules with their memory maximum set, by content and maximum: a fuzzer runs one app many times. */
const limited = new Map<string, WebAssembly.Module>();
function compileLimited(bytes: Uint8Array, maxPages: number, what: string): WebAssembly.Module | undefined {
  const key = `${createHash("sha256").update(bytes).digest("hex")}/${maxPages}`;
  let mod = limited.get(key);
  if (!mod) {
    const patched = withMemoryMaximum(bytes, maxPages);
    if (!patched) return undefined;
    try {
      mod = new WebAssembly.Module(patched as Uint8Array<ArrayBuffer>);
    } catch (e: any) {
      throw new HarnessError(`${what} is not a valid wasm module: ${e.message}`);
    }
    limited.set(key, mod);
  }
  return mod;
}

interface Limits {
  memoryMiB: number;
  imageKiB?: number;
}

function prepare(wasm: string | Uint8Array, nativeSource?: string | Uint8Array, limits?: Limits): Loaded {
  let bytes: Uint8Array;
  const what = typeof wasm === "string" ? wasm : "module";
  if (typeof wasm === "string") {
    try {
      bytes = readFileSync(wasm);
    } catch (e: any) {
      throw new HarnessError(`cannot read ${wasm}: ${e.code === "ENOENT" ? "no such file (run npm run build)" : e.message}`);
    }
  } else bytes = wasm;
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (e: any) {
    throw new HarnessError(`${what} is not a valid wasm module: ${e.message}`);
  }
  const imports = WebAssembly.Module.imports(mod);
  // An app linked with native modules (app.json "native") also imports their functions and memory.
  const usesNative = imports.some((i) => i.module === NATIVE_MODULE && i.kind === "function");
  for (const imp of imports) {
    if (imp.module === ABI_MODULE && imp.kind === "function" && Object.hasOwn(ABI_IMPORTS, imp.name)) continue;
    if (usesNative && imp.module === NATIVE_MODULE && imp.kind === "function") continue;
    if (usesNative && `${imp.module}.${imp.name}` === SHARED_MEMORY && imp.kind === "memory") continue;
    throw new HarnessError(
      `${what}: import ${imp.module}.${imp.name} (${imp.kind}) is not part of the Morgana ABI v1 (shim/ABI.md lists what a unikernel may import` +
        (usesNative
          ? `; an app linked with native modules may also import functions of module "${NATIVE_MODULE}" and the memory ${SHARED_MEMORY})`
          : ")"),
    );
  }
  const sigs = moduleSignatures(bytes);
  for (const [key, sig] of sigs.imports) {
    if (!key.startsWith(`${ABI_MODULE}.`)) continue;
    const want = ABI_IMPORTS[key.slice(ABI_MODULE.length + 1)];
    if (sig !== want) throw new HarnessError(`${what}: import ${key} has type ${sig}, but ABI v1 says ${want}`);
  }
  const exports = WebAssembly.Module.exports(mod);
  if (!exports.some((e) => e.name === "memory" && e.kind === "memory"))
    throw new HarnessError(`${what}: exports no memory named "memory" (ABI.md §1)`);
  if (!exports.some((e) => e.name === "_start" && e.kind === "function"))
    throw new HarnessError(`${what}: exports no function "_start" (build apps with asc --exportStart _start; ABI.md §1)`);
  const shared = sigs.memories.get(SHARED_MEMORY);
  if (usesNative && !shared)
    throw new HarnessError(
      `${what}: imports from module "${NATIVE_MODULE}" but not the memory ${SHARED_MEMORY} (build it with asc --importMemory: app.json "native")`,
    );
  const fail = (msg: string) => new HarnessError(msg);
  let native: NativeModule | undefined;
  if (usesNative) {
    const names = appConfig(wasm)?.native ?? inferSelection(sigs);
    checkNativeSelection(sigs, what, names, fail); // names the library to add before looking for its file
    native = loadNative(nativeSource, names, fail);
    checkNativeLink(sigs, what, native.sigs, native.what, names, fail);
  }
  const loaded: Loaded = { mod, native, memoryPages: usesNative ? shared!.initial : 0 };
  if (!limits) return loaded;
  // memory.grow refuses where the shim's frame pool runs out: the memory's maximum.
  const imageBytes =
    limits.imageKiB !== undefined ? limits.imageKiB * 1024 : estimateImageBytes(bytes.length + (native?.bytes.length ?? 0));
  const plan = memoryPlan(limits.memoryMiB, imageBytes);
  // A module that grants or maps pages makes the shim take the I/O region's tables from the pool.
  const grants = imports.some((i) => i.module === ABI_MODULE && (i.name === "gnttab_grant_access" || i.name === "gnttab_map"));
  const maxPages = maxLinearPages(plan, grants ? IO_TABLE_FRAMES : 0);
  loaded.plan = plan;
  loaded.maxPages = maxPages;
  if (native) {
    const nMod = compileLimited(native.bytes, maxPages, native.what);
    if (nMod) loaded.native = { ...native, mod: nMod };
  } else loaded.mod = compileLimited(bytes, maxPages, what) ?? mod;
  return loaded;
}

const REASON_OUTCOME: Record<number, Outcome> = {
  [SHUTDOWN.poweroff]: "poweroff",
  [SHUTDOWN.reboot]: "reboot",
  [SHUTDOWN.crash]: "crash",
  [SHUTDOWN.watchdog]: "watchdog",
};

/** The app.json of build/<app>[.debug].wasm; null for other files and bytes. */
function appConfig(wasm: string | Uint8Array): AppConfig | null {
  if (typeof wasm !== "string" || resolve(dirname(wasm)) !== BUILD_DIR) return null;
  const app = basename(wasm).replace(/(\.debug)?\.wasm$/, "");
  return existsSync(join(APPS_DIR, app)) ? loadAppConfig(app) : null;
}

/** The memory an app's image gets (app.json "memory", default 32) for build/<app>[.debug].wasm; else the default. */
function appMemoryMiB(wasm: string | Uint8Array): number {
  return appConfig(wasm)?.memory ?? DEFAULT_MEMORY_MIB;
}

/** Runs a module to its end. Throws HarnessError when it cannot start; guest failures are results. */
export function runWasm(opts: RunOptions): RunResult {
  const memoryMiB = opts.memoryMiB ?? appMemoryMiB(opts.wasm);
  const { mod, native, memoryPages, plan, maxPages } = prepare(opts.wasm, opts.native, { memoryMiB, imageKiB: opts.imageKiB });
  const dom = new Domain({
    name: opts.name ?? "guest",
    domid: opts.domid,
    memoryMiB,
    poolFrames: plan!.poolFrames,
    cmdline: opts.cmdline,
    onConsole: opts.onConsole,
    uuid: opts.uuid,
  });
  const t0 = performance.now();
  const end = (outcome: Outcome, detail: string, trap?: Trap): RunResult => ({
    outcome,
    exitCode: EXIT_CODE[outcome],
    console: dom.console.text(),
    trap,
    detail,
    ms: performance.now() - t0,
    domain: dom,
  });
  const report = (text: string) => dom.console.write(new TextEncoder().encode(text));
  // The shim maps the initial memory before anything runs; too little of it is fatal there.
  const noRoom = (pages: number) => {
    report(
      `FATAL: mapping the initial wasm memory (${pages} pages of 64 KiB; the domain's ${memoryMiB} MiB leave room for ${maxPages}) failed: -12\n`,
    );
    return end("crash", `crash: the initial wasm memory (${pages} pages) does not fit in ${memoryMiB} MiB`);
  };
  let memory: WebAssembly.Memory | undefined;
  let instance: WebAssembly.Instance | undefined;
  const imports: WebAssembly.Imports = { [ABI_MODULE]: abiImports(dom, () => memory!) };
  if (native) {
    // The native module first: it defines the memory. Its calls into the app find the app's instance late.
    let nat: WebAssembly.Instance;
    try {
      nat = instantiateNative(native, () => instance);
    } catch (e: any) {
      throw new HarnessError(`cannot instantiate the native module ${native.what}: ${e.message}`);
    }
    const shared = nat.exports.memory as WebAssembly.Memory;
    // The app's data lies above the native module's: the memory must be as large as the app declares.
    const pages = shared.buffer.byteLength / 65536;
    if (Math.max(pages, memoryPages) > maxPages!) return noRoom(Math.max(pages, memoryPages));
    if (memoryPages > pages) shared.grow(memoryPages - pages);
    const api: Record<string, WebAssembly.ExportValue> = {};
    for (const imp of WebAssembly.Module.imports(mod)) if (imp.module === NATIVE_MODULE) api[imp.name] = nat.exports[imp.name];
    imports[NATIVE_MODULE] = api;
    imports.env = { memory: shared };
  }
  try {
    instance = new WebAssembly.Instance(mod, imports);
  } catch (e: any) {
    throw new HarnessError(`cannot instantiate: ${e.message} (an import's signature differs from shim/ABI.md?)`);
  }
  memory = instance.exports.memory as WebAssembly.Memory;
  if (memory.buffer.byteLength / 65536 > maxPages!) return noRoom(memory.buffer.byteLength / 65536);
  dom.memory = () => memory!.buffer;
  (opts.disks ?? []).forEach((d, i) => dom.vbds.push(new VbdBackend(dom, vbdDevid(i), d)));
  (opts.vifs ?? []).forEach((v, i) => dom.vifs.push(new VifBackend(dom, i, v)));
  opts.setup?.(dom);

  const savedLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = MAX_FRAMES + 8; // enough to know the report was truncated
  try {
    (instance!.exports._start as () => void)();
    return end("poweroff", "poweroff (_start returned)");
  } catch (e) {
    if (e instanceof ShutdownSignal) {
      const outcome = REASON_OUTCOME[e.reason];
      return end(outcome, `shutdown: ${outcome}`);
    }
    if (e instanceof GuestFault) {
      report(`FATAL: ${e.message}\n`);
      return end("crash", `crash: ${e.message}`);
    }
    if (e instanceof PowerCutSignal) {
      report(`POWER CUT: ${e.message}\n`);
      return end("poweroff", `power cut: ${e.message}`);
    }
    if (e instanceof DeadlockSignal) {
      report(`HANG: ${e.message}\n`);
      return end("timeout", `hang: ${e.message}`);
    }
    const trap = asTrap(e);
    if (trap) {
      report(formatTrap(trap));
      return end("crash", `crash: wasm trap: ${trap.reason}`, trap);
    }
    throw e; // a bug in the harness itself: let it surface with its own stack
  } finally {
    Error.stackTraceLimit = savedLimit;
  }
}
