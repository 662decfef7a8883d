// Runs a unikernel's wasm module in Node against an emulated Xen domain
// (npm run dev, and the harness tests). The module is the very file that
// `npm run build:image` translates: nothing here needs a special build.
import { readFileSync } from "node:fs";
import { Domain, DomainConfig, SHUTDOWN } from "./domain.ts";
import { ABI_IMPORTS, ABI_MODULE, abiImports, DeadlockSignal, GuestFault, ShutdownSignal } from "./abi.ts";
import { moduleSignatures } from "./signatures.ts";
import { checkLink, instantiateSqlite, loadSqlite, SHARED_MEMORY, SQLITE_MODULE, SqliteModule } from "./sqlite.ts";
import { asTrap, formatTrap, MAX_FRAMES, Trap } from "./trap.ts";
import { EXIT_CODE, Outcome } from "../lib/outcome.ts";
import { Disk, DiskOptions, PowerCutSignal, VbdBackend, vbdDevid } from "./blkback.ts";

/** A problem with the module itself or the host: the guest never ran (exit code 1). */
export class HarnessError extends Error {}

export interface RunOptions extends Partial<DomainConfig> {
  /** Path of the .wasm file, or its bytes. */
  wasm: string | Uint8Array;
  /** Called with the domain before the guest starts: install backends, hooks, xenstore keys. */
  setup?: (dom: Domain) => void;
  /** Virtual disks, attached as xvda, xvdb, ... (device/vbd/51712, 51728, ...); a Disk keeps its contents across runs. */
  disks?: (Disk | DiskOptions)[];
  /** The SQLite module for an app that imports from module "sqlite" (path or bytes);
   * default build/sqlite.wasm (npm run build makes it). */
  sqlite?: string | Uint8Array;
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
  /** Set when the module imports from "sqlite": the SQLite module it links with. */
  sqlite?: SqliteModule;
  /** Pages the app's imported memory must have (its declared minimum). */
  memoryPages: number;
}

/** Compiles and checks a module against ABI v1; throws HarnessError naming the problem. */
export function loadModule(wasm: string | Uint8Array, sqlite?: string | Uint8Array): WebAssembly.Module {
  return prepare(wasm, sqlite).mod;
}

function prepare(wasm: string | Uint8Array, sqliteSource?: string | Uint8Array): Loaded {
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
  // An app linked with SQLite (app.json "sqlite") also imports SQLite's functions and its memory.
  const usesSqlite = imports.some((i) => i.module === SQLITE_MODULE && i.kind === "function");
  for (const imp of imports) {
    if (imp.module === ABI_MODULE && imp.kind === "function" && Object.hasOwn(ABI_IMPORTS, imp.name)) continue;
    if (usesSqlite && imp.module === SQLITE_MODULE && imp.kind === "function") continue;
    if (usesSqlite && `${imp.module}.${imp.name}` === SHARED_MEMORY && imp.kind === "memory") continue;
    throw new HarnessError(
      `${what}: import ${imp.module}.${imp.name} (${imp.kind}) is not part of the Morgana ABI v1 (shim/ABI.md lists what a unikernel may import` +
        (usesSqlite ? `; an app linked with SQLite may also import functions of module "sqlite" and the memory ${SHARED_MEMORY})` : ")"),
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
  if (usesSqlite && !shared)
    throw new HarnessError(`${what}: imports from module "sqlite" but not the memory ${SHARED_MEMORY} (build it with asc --importMemory: app.json "sqlite": true)`);
  if (!usesSqlite) return { mod, memoryPages: 0 };
  const fail = (msg: string) => new HarnessError(msg);
  const sqlite = loadSqlite(sqliteSource, fail);
  checkLink(sigs, what, sqlite, fail);
  return { mod, sqlite, memoryPages: shared!.initial };
}

const REASON_OUTCOME: Record<number, Outcome> = {
  [SHUTDOWN.poweroff]: "poweroff",
  [SHUTDOWN.reboot]: "reboot",
  [SHUTDOWN.crash]: "crash",
  [SHUTDOWN.watchdog]: "watchdog",
};

/** Runs a module to its end. Throws HarnessError when it cannot start; guest failures are results. */
export function runWasm(opts: RunOptions): RunResult {
  const { mod, sqlite, memoryPages } = prepare(opts.wasm, opts.sqlite);
  const dom = new Domain({
    name: opts.name ?? "guest",
    domid: opts.domid,
    memoryMiB: opts.memoryMiB,
    cmdline: opts.cmdline,
    onConsole: opts.onConsole,
    uuid: opts.uuid,
  });
  let memory: WebAssembly.Memory | undefined;
  let instance: WebAssembly.Instance | undefined;
  const imports: WebAssembly.Imports = { [ABI_MODULE]: abiImports(dom, () => memory!) };
  if (sqlite) {
    // SQLite first: it defines the memory. Its calls into the app find the app's instance late.
    let sq: WebAssembly.Instance;
    try {
      sq = instantiateSqlite(sqlite, () => instance);
    } catch (e: any) {
      throw new HarnessError(`cannot instantiate the SQLite module ${sqlite.what}: ${e.message}`);
    }
    const shared = sq.exports.memory as WebAssembly.Memory;
    // The app's data lies above SQLite's: the memory must be as large as the app declares.
    const pages = shared.buffer.byteLength / 65536;
    if (memoryPages > pages) shared.grow(memoryPages - pages);
    const api: Record<string, WebAssembly.ExportValue> = {};
    for (const imp of WebAssembly.Module.imports(mod)) if (imp.module === SQLITE_MODULE) api[imp.name] = sq.exports[imp.name];
    imports[SQLITE_MODULE] = api;
    imports.env = { memory: shared };
  }
  try {
    instance = new WebAssembly.Instance(mod, imports);
  } catch (e: any) {
    throw new HarnessError(`cannot instantiate: ${e.message} (an import's signature differs from shim/ABI.md?)`);
  }
  memory = instance.exports.memory as WebAssembly.Memory;
  dom.memory = () => memory!.buffer;
  (opts.disks ?? []).forEach((d, i) => dom.vbds.push(new VbdBackend(dom, vbdDevid(i), d)));
  opts.setup?.(dom);

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
