// Native modules: C libraries (SQLite, lwIP) compiled to wasm objects by clang. An app
// selects some with app.json "native" (e.g. ["sqlite", "lwip"]); wasm-ld links the
// selected libraries' objects and ONE copy of the freestanding libc (sqlite/libc.c) into
// one wasm module per selection, build/native-<names sorted, joined by "+">.wasm. That
// module owns the linear memory, which the app imports as env.memory: the native C's
// stack, data and static pools sit low, the app's data above the module's __heap_base
// (asc --memoryBase). The app imports every native function from module "native"; the
// native C imports the app's callbacks (morgana_vfs_*, morgana_lwip_*) from module "app".
// The harness instantiates the two side by side; the image build translates each with
// wasm2c and links them at C level (shim/app.c).
//
// Each library's objects are compiled and cached by its own file (sqlite.ts, lwip.ts);
// the link is cached here by the objects' bytes and the link flags.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { BUILD_DIR, ROOT } from "./paths.ts";
import { tool, toolVersion } from "./exec.ts";
import { cacheArea, cached, contentKey, hashDir } from "./cache.ts";
import { ModuleSignatures } from "./wasm-info.ts";
// A cycle: sqlite.ts and lwip.ts take the toolchain constants below from here. Neither side
// uses the other's bindings at load time (the components are looked up when a build runs).
import { sqliteComponent } from "./sqlite.ts";
import { lwipComponent } from "./lwip.ts";

export const CLANG = "/usr/bin/clang-14";
export const WASM_LD = "/usr/bin/wasm-ld-14";

/** The freestanding C library every native module links once. */
export const LIBC_C = join(ROOT, "sqlite", "libc.c");
export const LIBC_INCLUDE = join(ROOT, "sqlite", "include");

/** The module the app imports native functions from, and the one the native C imports the app's from. */
export const NATIVE_MODULE = "native";
export const NATIVE_APP_MODULE = "app";
/** The memory the app imports: the native module's. */
export const SHARED_MEMORY = "env.memory";

/** The native libraries an app may select (app.json "native"), in link order. */
export const NATIVE_NAMES = ["lwip", "sqlite"] as const;
export type NativeName = (typeof NATIVE_NAMES)[number];

const CACHE = cacheArea("native");

/** Code generation: wasm32 with the post-MVP features Node 20 and wasm2c 1.0.32 both
 * support, no host headers (sqlite/include stands in for libc's), nothing exported that
 * is not asked for. `includeDir`: the library's own headers (searched after libc's). */
export function codegenFlags(resourceDir: string, includeDir?: string): string[] {
  return [
    "--target=wasm32",
    "-O2",
    "-mbulk-memory", // memcpy/memset as memory.copy/fill (libc.c)
    "-mnontrapping-fptoint", // float→int casts saturate instead of calling a helper
    "-msign-ext", // i32.extend8_s etc. instead of shift pairs
    "-ffreestanding",
    "-nostdinc",
    "-isystem",
    join(resourceDir, "include"), // clang's stddef/stdarg only
    "-I",
    LIBC_INCLUDE, // the freestanding libc headers
    ...(includeDir ? ["-I", includeDir] : []),
    "-fvisibility=hidden", // only export_name functions and --export are visible
  ];
}

/** clang's version line and resource folder (its stddef.h etc.), read once per process. */
export interface Toolchain {
  clangVersion: string;
  resourceDir: string;
}
let toolchainInfo: Promise<Toolchain> | null = null;
export function toolchain(): Promise<Toolchain> {
  toolchainInfo ??= (async () => ({
    clangVersion: await toolVersion(CLANG),
    resourceDir: (await tool(CLANG, ["-print-resource-dir"], "compiling native modules")).trim(),
  }))();
  return toolchainInfo;
}

/** One library's compiled objects (libc excluded). */
export interface NativeObjects {
  objects: string[];
  /** Sources that had to be compiled (e.g. ["sqlite3.c", "glue.c"]). */
  compiled: string[];
  /** clang's time per compiled file, ms. */
  compileMs: Record<string, number>;
  /** The library's version, when it has one to report ("3.53.2"). */
  version?: string;
}

/** What the link needs to know about one library (sqliteComponent(), lwipComponent()). */
export interface NativeComponent {
  name: NativeName;
  /** For messages: "SQLite". */
  what: string;
  /** Its C stack: the linked module gets the largest of the selection's. */
  stackBytes: number;
  /** Functions the module must export (wasm-ld --export; export_name functions come on their own). */
  exports(): string[];
  /** Whether native.<name> is this library's: names the library to add when an app imports it without it. */
  provides(name: string): boolean;
  /** Whether its C may import app.<name>. */
  imports(name: string): boolean;
  /** What imports() allows, for messages: "app.morgana_vfs_*". */
  importsWhat: string;
  /** asc entry files exporting the functions its C imports from the app (asc exports every entry's exports). */
  ascEntries: string[];
  /** Where an app gets the exports its C imports, for messages. */
  exportsHint: string;
  /** Compiles (or finds in its cache) the library's objects. */
  compile(tc: Toolchain, log: (line: string) => void): Promise<NativeObjects>;
}

/** The component of each name, looked up when a build runs (see the import cycle above). */
export function nativeComponent(name: NativeName): NativeComponent {
  return name === "sqlite" ? sqliteComponent() : lwipComponent();
}

/** `"native": [...]` checked: an array of known names, each once; returned in link order. Throws naming what is wrong. */
export function parseNativeSelection(value: unknown, where: string): NativeName[] {
  const valid = `the valid names are ${NATIVE_NAMES.map((n) => `"${n}"`).join(", ")}`;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string"))
    throw new Error(`${where}: "native" must be an array of native module names (${valid}), got ${JSON.stringify(value)?.slice(0, 80)}`);
  const seen = new Set<string>();
  for (const v of value as string[]) {
    if (!(NATIVE_NAMES as readonly string[]).includes(v))
      throw new Error(`${where}: "native" names an unknown module "${v.slice(0, 40)}": ${valid}`);
    if (seen.has(v)) throw new Error(`${where}: "native" names "${v}" twice`);
    seen.add(v);
  }
  return NATIVE_NAMES.filter((n) => seen.has(n));
}

/** "lwip+sqlite": the selection's name in file names. */
export function selectionId(names: readonly NativeName[]): string {
  return [...names].sort().join("+");
}

/** build/native-<selection>.wasm: the stable copy the harness finds without a build. */
export function nativeWasmPath(names: readonly NativeName[]): string {
  return join(BUILD_DIR, `native-${selectionId(names)}.wasm`);
}

/** The libraries that provide native.<name>, for messages. */
function providers(name: string): NativeComponent[] {
  return NATIVE_NAMES.map(nativeComponent).filter((c) => c.provides(name));
}

/** The selection an app needs, read off its module: the libraries whose functions it imports
 * from "native" or whose callbacks it exports (for hosts given a module without its app.json). */
export function inferSelection(app: ModuleSignatures): NativeName[] {
  const comps = NATIVE_NAMES.map(nativeComponent);
  return comps
    .filter(
      (c) =>
        [...app.imports.keys()].some((k) => k.startsWith(`${NATIVE_MODULE}.`) && c.provides(k.slice(NATIVE_MODULE.length + 1))) ||
        [...app.exports.keys()].some((n) => c.imports(n)),
    )
    .map((c) => c.name);
}

export interface NativeBuild {
  names: NativeName[];
  /** The module in the content-addressed cache, and its copy build/native-<selection>.wasm. */
  wasm: string;
  copy: string;
  key: string;
  clangVersion: string;
  clangResourceDir: string;
  /** Each library's version, where it has one ({ sqlite: "3.53.2" }). */
  versions: Partial<Record<NativeName, string>>;
  stackBytes: number;
  /** Nothing was compiled or linked: everything came from the cache. */
  cached: boolean;
  /** Sources that had to be compiled. */
  compiled: string[];
  compileMs: Record<string, number>;
  ms: number;
}

export interface NativeOptions {
  log?: (line: string) => void;
}

// One build per selection, and one compile per library, at a time in a process: concurrent
// callers (npm run build's workers, two selections sharing a library) share the work.
const inflight = new Map<string, Promise<NativeBuild>>();
const compiling = new Map<string, Promise<NativeObjects>>();

function once<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = make().finally(() => map.delete(key));
    map.set(key, p);
  }
  return p;
}

/** Builds the selection's module (or finds it in the cache) and copies it to build/native-<selection>.wasm. */
export function buildNative(names: readonly NativeName[], opts: NativeOptions = {}): Promise<NativeBuild> {
  let sel: NativeName[];
  try {
    sel = parseNativeSelection([...names], "buildNative");
    if (sel.length === 0) throw new Error('buildNative: the selection is empty (app.json has no "native" modules)');
  } catch (e) {
    return Promise.reject(e);
  }
  return once(inflight, selectionId(sel), () => doBuild(sel, opts.log ?? (() => {})));
}

async function doBuild(names: NativeName[], log: (line: string) => void): Promise<NativeBuild> {
  const t0 = performance.now();
  const tc = await toolchain();
  const comps = names.map(nativeComponent);
  // One library after the other: each compiles two files at a time (2 cores).
  const parts: NativeObjects[] = [];
  for (const c of comps) parts.push(await once(compiling, c.name, () => c.compile(tc, log)));
  const libc = await once(compiling, "libc", () => compileLibc(tc, log));
  const objects = [...parts.flatMap((p) => p.objects), ...libc.objects];
  const stackBytes = Math.max(...comps.map((c) => c.stackBytes));
  const { wasm, key, linked } = await linkNative(
    names,
    objects,
    stackBytes,
    comps.flatMap((c) => c.exports()),
  );
  const versions: Partial<Record<NativeName, string>> = {};
  comps.forEach((c, i) => parts[i].version !== undefined && (versions[c.name] = parts[i].version));
  const all = [...parts, libc];
  const compiled = all.flatMap((p) => p.compiled);
  return {
    names,
    wasm,
    copy: nativeWasmPath(names),
    key,
    clangVersion: tc.clangVersion,
    clangResourceDir: tc.resourceDir,
    versions,
    stackBytes,
    cached: compiled.length === 0 && !linked,
    compiled,
    compileMs: Object.assign({}, ...all.map((p) => p.compileMs)),
    ms: performance.now() - t0,
  };
}

/** sqlite/libc.c, compiled once for every selection, keyed by its source, headers, flags and compiler. */
async function compileLibc(tc: Toolchain, log: (line: string) => void): Promise<NativeObjects> {
  const args = codegenFlags(tc.resourceDir);
  const out = join(
    CACHE,
    "obj",
    contentKey("libc.c", readFileSync(LIBC_C), hashDir(LIBC_INCLUDE), tc.clangVersion, args.join(" ").replaceAll(ROOT, "<root>")),
    "libc.o",
  );
  const c0 = performance.now();
  const hit = await cached(out, async (tmp) => {
    log(`  native   compiling libc.c`);
    await tool(CLANG, [...args, "-c", LIBC_C, "-o", tmp], "compiling libc.c for the native modules");
  });
  return { objects: [out], compiled: hit ? [] : ["libc.c"], compileMs: hit ? {} : { "libc.c": performance.now() - c0 } };
}

/**
 * Links the objects (cached by their bytes and the link flags), checks the result, and
 * copies it to build/native-<selection>.wasm when it changed. `linked` is false on a cache hit.
 */
async function linkNative(
  names: NativeName[],
  objects: string[],
  stackBytes: number,
  exports: string[],
): Promise<{ wasm: string; key: string; linked: boolean }> {
  const what = `the native module (${selectionId(names)})`;
  const ldArgs = [
    "--no-entry", // a library: the app calls in
    "--stack-first", // stack at the bottom: an overflow traps at address < 0 instead of corrupting data
    "-z",
    `stack-size=${stackBytes}`,
    "--max-memory=4294901760", // 65535 pages: the memory grows as the app's heap does
    "--export=__heap_base", // where the app's data may start (asc --memoryBase)
    "--export=__data_end",
    ...exports.map((n) => `--export=${n}`),
  ];
  const key = contentKey(...objects.map((f) => readFileSync(f)), ldArgs.join(" "));
  const wasm = join(CACHE, key, `native-${selectionId(names)}.wasm`);
  const linked = !(await cached(wasm, async (tmp) => {
    await tool(WASM_LD, [...ldArgs, ...objects, "-o", tmp], `linking ${what}`);
  }));
  checkNativeModule(readFileSync(wasm), names, wasm);
  const out = nativeWasmPath(names);
  mkdirSync(BUILD_DIR, { recursive: true });
  if (!existsSync(out) || !readFileSync(out).equals(readFileSync(wasm))) {
    copyFileSync(wasm, `${out}.tmp${process.pid}`);
    renameSync(`${out}.tmp${process.pid}`, out);
  }
  return { wasm, key, linked };
}

/** Checks a native module for `names`: imports only what the selected libraries' C may import
 * from "app", exports memory, __heap_base and every selected library's API. */
export function checkNativeModule(
  wasm: Uint8Array,
  names: readonly NativeName[],
  what = `the native module (${selectionId(names)})`,
): void {
  const comps = names.map(nativeComponent);
  const mod = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  for (const imp of WebAssembly.Module.imports(mod))
    if (imp.module !== NATIVE_APP_MODULE || imp.kind !== "function" || !comps.some((c) => c.imports(imp.name)))
      throw new Error(
        `${what}: unexpected import ${imp.module}.${imp.name} (${imp.kind}): only ${comps.map((c) => c.importsWhat).join(", ")} are allowed (a libc function missing from sqlite/libc.c?)`,
      );
  const exports = new Map(WebAssembly.Module.exports(mod).map((e) => [e.name, e.kind]));
  if (exports.get("memory") !== "memory") throw new Error(`${what}: exports no memory "memory"`);
  if (exports.get("__heap_base") !== "global") throw new Error(`${what}: exports no global __heap_base`);
  for (const c of comps) {
    const missing = c.exports().filter((n) => exports.get(n) !== "function");
    if (missing.length) throw new Error(`${what}: does not export ${missing.join(", ")} (${c.what}'s API)`);
  }
}

/** The native module's memory layout: where the app's data may start. */
export interface NativeLayout {
  /** __heap_base: the end of the native stack and data. */
  heapBase: number;
  /** The app's --memoryBase: __heap_base rounded up to a 64 KiB page. */
  memoryBase: number;
  /** Pages the native module's memory starts with. */
  initialPages: number;
}

/** Reads the layout by instantiating the module with inert imports (it has no start function). */
export function nativeLayout(wasm: Uint8Array): NativeLayout {
  const mod = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  const imports: Record<string, Record<string, Function>> = {};
  for (const imp of WebAssembly.Module.imports(mod))
    (imports[imp.module] ??= {})[imp.name] = () => {
      throw new Error("inert");
    };
  const inst = new WebAssembly.Instance(mod, imports as WebAssembly.Imports);
  const heapBase = (inst.exports.__heap_base as WebAssembly.Global).value as number;
  const memory = inst.exports.memory as WebAssembly.Memory;
  return { heapBase, memoryBase: Math.ceil(heapBase / 65536) * 65536, initialPages: memory.buffer.byteLength / 65536 };
}

/** "lwip + sqlite 3.53.2": the selection with the libraries' versions, for build logs. */
export function describeBuild(b: NativeBuild): string {
  return b.names.map((n) => (b.versions[n] ? `${n} ${b.versions[n]}` : n)).join(" + ");
}

/** `"native": ["lwip", "sqlite"]`, for messages. */
export function selectionJson(names: readonly NativeName[]): string {
  return `[${names.map((n) => `"${n}"`).join(", ")}]`;
}

/**
 * Checks that an app's native imports are what its selection provides, before anything is
 * linked: an import no selected library provides fails naming the function and the library
 * to add to app.json "native". `names` is the selection the app was built with.
 */
export function checkNativeSelection(
  app: ModuleSignatures,
  appWhat: string,
  names: readonly NativeName[],
  fail: (msg: string) => Error,
): void {
  const comps = names.map(nativeComponent);
  for (const key of app.imports.keys()) {
    if (!key.startsWith(`${NATIVE_MODULE}.`)) continue;
    const name = key.slice(NATIVE_MODULE.length + 1);
    if (comps.some((c) => c.provides(name))) continue;
    const by = providers(name);
    if (by.length === 0)
      throw fail(
        `${appWhat}: import ${key} is no native module's function (the native modules are ${NATIVE_NAMES.join(", ")}; a misspelt @external name?)`,
      );
    const want = NATIVE_NAMES.filter((n) => names.includes(n) || n === by[0].name);
    throw fail(
      `${appWhat}: import ${key} is ${by[0].what}'s, but the app selects ${names.length ? `"native": ${selectionJson(names)}` : "no native modules"}: write "native": ${selectionJson(want)} in its app.json`,
    );
  }
}

/** Checks the app against the native module both ways: what each imports from the other exists with the same signature. */
export function checkNativeLink(
  app: ModuleSignatures,
  appWhat: string,
  native: ModuleSignatures,
  nativeWhat: string,
  names: readonly NativeName[],
  fail: (msg: string) => Error,
): void {
  checkNativeSelection(app, appWhat, names, fail);
  for (const [key, sig] of app.imports) {
    if (!key.startsWith(`${NATIVE_MODULE}.`)) continue;
    const name = key.slice(NATIVE_MODULE.length + 1);
    const have = native.exports.get(name);
    if (have === undefined)
      throw fail(`${appWhat}: import ${key} is not exported by ${nativeWhat} (the declarations and the build's export list disagree?)`);
    if (have !== sig) throw fail(`${appWhat}: import ${key} has type ${sig}, but ${nativeWhat} exports it as ${have}`);
  }
  const comps = names.map(nativeComponent);
  for (const [key, sig] of native.imports) {
    const name = key.slice(key.indexOf(".") + 1);
    const have = app.exports.get(name);
    const owner = comps.find((c) => c.imports(name));
    if (have === undefined)
      throw fail(
        `${appWhat}: exports no function ${name}, which ${nativeWhat} imports${owner ? ` for ${owner.what} (${owner.exportsHint})` : ""}`,
      );
    if (have !== sig) throw fail(`${appWhat}: export ${name} has type ${have}, but ${nativeWhat} imports it as ${sig}`);
  }
  if (!app.memories.has(SHARED_MEMORY))
    throw fail(
      `${appWhat}: imports from module "${NATIVE_MODULE}" but not its memory ${SHARED_MEMORY} (asc --importMemory: app.json "native")`,
    );
}
