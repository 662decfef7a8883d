// The SQLite module: SQLite's amalgamation plus sqlite/glue.c (the "morgana" VFS, which
// forwards to functions the app exports) and sqlite/libc.c, compiled by clang to one
// wasm32 module, build/sqlite.wasm. It defines the linear memory that an app using
// SQLite (app.json "sqlite": true) imports as env.memory: SQLite's stack, data and
// static heap sit low, the AssemblyScript module above SQLite's __heap_base (asc
// --memoryBase). The harness instantiates the two modules side by side; the image
// build translates each with wasm2c and links them at C level (sqlite/README.md).
//
// The source is the amalgamation better-sqlite3 ships (npm pack, integrity pinned
// below); it is never committed. Every step is cached by content under .cache/sqlite/.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, BUILD_DIR } from "./paths.ts";
import { tool, toolVersion } from "./exec.ts";
import { cacheArea, cached, contentKey as sha, hashDir } from "./cache.ts";
import { linkNativeModule } from "./native.ts";

/** Where the amalgamation comes from: better-sqlite3 12.11.1 ships SQLite 3.53.2. */
export const SQLITE_PACKAGE = "better-sqlite3@12.11.1";
/** `npm view better-sqlite3@12.11.1 dist.integrity`: the tarball must match it. */
export const SQLITE_INTEGRITY = "sha512-dq9AtApgg5PGFtBzPFSBl3HZQjHok5gaQCM6zh2Yk0aSmDCs1CbnVI8/HgASQkNKsWFpseIO9beg5xxpYhbIfA==";
export const SQLITE_MODULE = "sqlite";
/** The module name under which the SQLite module imports the app's VFS functions. */
export const SQLITE_APP_MODULE = "app";
export const SQLITE_VFS_PREFIX = "morgana_vfs_";

export const CLANG = "/usr/bin/clang-14";
const SRC_DIR = join(ROOT, "sqlite");
const DECLS = join(ROOT, "assembly", "runtime", "sqlite", "sqlite3.ts");
const CACHE = cacheArea("sqlite");
/** The stable copy the harness finds without a build (runWasm is synchronous). */
export const SQLITE_WASM = join(BUILD_DIR, "sqlite.wasm");
/** SQLite's C stack (wasm-ld --stack-first puts it at the bottom of memory). */
export const SQLITE_STACK = 256 * 1024;

/** The freestanding C library every native module links (tools/lib/lwip.ts shares it). */
export const LIBC_C = join(SRC_DIR, "libc.c");
export const LIBC_INCLUDE = join(SRC_DIR, "include");

/** Code generation: wasm32 with the post-MVP features Node 20 and wasm2c 1.0.32 both
 * support, no host headers (sqlite/include stands in for libc's), nothing exported that
 * is not asked for. */
export function codegenFlags(resourceDir: string, amalgamationDir: string): string[] {
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
    join(SRC_DIR, "include"), // the freestanding libc headers
    "-I",
    amalgamationDir, // sqlite3.h
    "-fvisibility=hidden", // only export_name functions and --export are visible
  ];
}

/** SQLite's compile-time options, each with why. */
const SQLITE_DEFINES: [string, string][] = [
  ["-DSQLITE_OS_OTHER=1", "no unix/win32 VFS: glue.c provides sqlite3_os_init and the morgana VFS"],
  ["-DSQLITE_THREADSAFE=0", "one thread: no mutexes"],
  ["-DSQLITE_ZERO_MALLOC", "no system malloc exists; memsys5 gets its heap from morgana_sqlite_init"],
  ["-DSQLITE_ENABLE_MEMSYS5", "the buddy allocator on a static heap (SQLITE_CONFIG_HEAP)"],
  ["-DSQLITE_OMIT_LOAD_EXTENSION", "no dlopen"],
  ["-DSQLITE_OMIT_WAL", "WAL needs shared memory between processes; there is one process"],
  ["-DSQLITE_TEMP_STORE=3", "temporary tables and indices always in memory: no temp files"],
  ["-DSQLITE_OMIT_UTF16", "the app speaks UTF-8; smaller"],
  ["-DSQLITE_OMIT_DEPRECATED", "smaller; no legacy API"],
  ["-DSQLITE_OMIT_SHARED_CACHE", "one connection"],
  ["-DSQLITE_DEFAULT_MEMSTATUS=0", "no allocation statistics on the hot path (memory_used reads memsys5 instead)"],
  ["-DSQLITE_MAX_MMAP_SIZE=0", "no mmap"],
  ["-DSQLITE_DQS=0", "double-quoted strings are identifiers only, as recommended"],
  ["-DSQLITE_USE_ALLOCA", "scratch space on the (wasm) stack instead of the heap"],
  ["-DNDEBUG", "no assert()"],
  ["-DSQLITE_DEFAULT_LOCKING_MODE=1", "exclusive locking: the VFS's locks are no-ops"],
  ["-DSQLITE_DEFAULT_SYNCHRONOUS=2", "FULL: a committed transaction survives a power cut"],
  ["-DSQLITE_OMIT_PROGRESS_CALLBACK", "no callbacks into the app except the VFS"],
  ["-DSQLITE_OMIT_AUTHORIZATION", "no authorizer callback"],
  ["-DSQLITE_OMIT_TRACE", "no trace callbacks"],
  ["-DSQLITE_OMIT_GET_TABLE", "legacy API"],
  ["-DSQLITE_OMIT_COMPLETE", "sqlite3_complete is for shells"],
  ["-DSQLITE_OMIT_DESERIALIZE", "the memdb VFS is not needed (:memory: still works)"],
  ["-DSQLITE_UNTESTABLE", "no test hooks (sqlite3_test_control)"],
  ["-DSQLITE_LIKE_DOESNT_MATCH_BLOBS", "faster LIKE, as recommended"],
  ["-DSQLITE_DEFAULT_FOREIGN_KEYS=1", "foreign keys enforced by default"],
  ["-Dalloca=__builtin_alloca", "there is no alloca.h"],
  ["-DSQLITE_OMIT_LOCALTIME", "no time zones in a unikernel: localtime() does not exist"],
];
export const SQLITE_DEFS = SQLITE_DEFINES.map(([d]) => d);

/** The functions the SQLite module must export: every @external("sqlite", name) in
 * assembly/runtime/sqlite/sqlite3.ts, so the declarations and the module never drift. */
export function sqliteApiNames(): string[] {
  const src = readFileSync(DECLS, "utf8");
  const names = [...src.matchAll(/@external\(\s*"sqlite"\s*,\s*"(\w+)"\s*\)/g)].map((m) => m[1]);
  if (names.length === 0) throw new Error(`${DECLS}: declares no @external("sqlite", ...) function`);
  return [...new Set(names)];
}

export interface SqliteBuild {
  /** The module in the content-addressed cache, and its copy build/sqlite.wasm. */
  wasm: string;
  copy: string;
  /** SQLITE_VERSION from sqlite3.h. */
  version: string;
  key: string;
  /** `clang-14 --version`'s first line and -print-resource-dir (the image build compiles SQLite's C with it too). */
  clangVersion: string;
  clangResourceDir: string;
  /** Nothing was compiled or linked: everything came from the cache. */
  cached: boolean;
  /** Objects that had to be compiled (e.g. ["sqlite3.c", "glue.c"]). */
  compiled: string[];
  /** clang's time per compiled file, ms. */
  compileMs: Record<string, number>;
  ms: number;
}

export interface SqliteOptions {
  log?: (line: string) => void;
}

/** Fetches and unpacks the amalgamation (once); returns the folder holding sqlite3.c/h. */
export async function amalgamation(log: (l: string) => void = () => {}): Promise<string> {
  const dir = join(CACHE, "src", sha(SQLITE_INTEGRITY));
  await cached(dir, async (tmp) => {
    mkdirSync(tmp, { recursive: true });
    log(`  sqlite   fetching ${SQLITE_PACKAGE} (npm pack)`);
    const out = await tool("npm", ["pack", SQLITE_PACKAGE, "--json", "--silent", "--pack-destination", tmp], "fetching SQLite's source", {
      cwd: tmp,
    });
    const file = JSON.parse(out.slice(out.indexOf("[")))[0].filename as string;
    const tgz = join(tmp, file.replace(/^@/, "").replace(/\//, "-"));
    const got = "sha512-" + createHash("sha512").update(readFileSync(tgz)).digest("base64");
    if (got !== SQLITE_INTEGRITY)
      throw new Error(`${SQLITE_PACKAGE}: tarball integrity ${got} differs from the pinned ${SQLITE_INTEGRITY} (tools/lib/sqlite.ts)`);
    await tool(
      "tar",
      ["-xzf", tgz, "-C", tmp, "--strip-components=3", "package/deps/sqlite3/sqlite3.c", "package/deps/sqlite3/sqlite3.h"],
      "unpacking SQLite's source",
    );
    rmSync(tgz);
  });
  return dir;
}

/** SQLITE_VERSION ("3.53.2") from sqlite3.h. */
export function headerVersion(dir: string): string {
  const m = /^#define SQLITE_VERSION\s+"([^"]+)"/m.exec(readFileSync(join(dir, "sqlite3.h"), "latin1"));
  if (!m) throw new Error(`${dir}/sqlite3.h: no SQLITE_VERSION`);
  return m[1];
}

let inflight: Promise<SqliteBuild> | null = null;

/** Builds the SQLite module (or finds it in the cache) and copies it to build/sqlite.wasm. */
export function buildSqlite(opts: SqliteOptions = {}): Promise<SqliteBuild> {
  // One build per process at a time: concurrent callers (npm run build's workers) share it.
  inflight ??= doBuild(opts).finally(() => {
    inflight = null;
  });
  return inflight;
}

async function doBuild(opts: SqliteOptions): Promise<SqliteBuild> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const src = await amalgamation(log);
  const version = headerVersion(src);
  const clangVersion = await toolVersion(CLANG);
  const resourceDir = (await tool(CLANG, ["-print-resource-dir"], "compiling SQLite")).trim();
  const cf = codegenFlags(resourceDir, src);
  const includes = hashDir(join(SRC_DIR, "include"));

  // Objects, each keyed by its source, the headers, the flags and the compiler.
  const units = [
    { name: "sqlite3.c", file: join(src, "sqlite3.c"), id: SQLITE_INTEGRITY, args: [...cf, ...SQLITE_DEFS] },
    { name: "glue.c", file: join(SRC_DIR, "glue.c"), id: "", args: [...cf, ...SQLITE_DEFS] },
    { name: "libc.c", file: join(SRC_DIR, "libc.c"), id: "", args: cf },
  ];
  const compiled: string[] = [];
  const compileMs: Record<string, number> = {};
  const objects = await Promise.all(
    units.map(async (u) => {
      // The amalgamation is keyed by its pinned integrity (hashing 9 MB each build is needless).
      const content = u.id || readFileSync(u.file);
      const out = join(
        CACHE,
        "obj",
        sha(u.name, content, includes, clangVersion, u.args.join(" ").replaceAll(src, "<src>")),
        u.name.replace(/\.c$/, ".o"),
      );
      const c0 = performance.now();
      const hit = await cached(out, async (tmp) => {
        log(`  sqlite   compiling ${u.name}`);
        await tool(CLANG, [...u.args, "-c", u.file, "-o", tmp], `compiling ${u.name} for the SQLite module`);
      });
      if (!hit) {
        compiled.push(u.name);
        compileMs[u.name] = performance.now() - c0;
      }
      return out;
    }),
  );

  // Link, keyed by the objects and the export list.
  const { wasm, key, linked } = await linkNativeModule({
    name: "sqlite",
    what: "the SQLite module",
    cacheDir: CACHE,
    objects,
    stackBytes: SQLITE_STACK,
    exports: sqliteApiNames(),
    check: checkSqliteModule,
  });
  writeFileSync(join(CACHE, "version"), version + "\n");
  const ms = performance.now() - t0;
  return {
    wasm,
    copy: SQLITE_WASM,
    version,
    key,
    clangVersion,
    clangResourceDir: resourceDir,
    cached: compiled.length === 0 && !linked,
    compiled,
    compileMs,
    ms,
  };
}

/** The SQLite module's memory layout: where the app's data may start. */
export interface SqliteLayout {
  /** SQLite's __heap_base: the end of its stack and data. */
  heapBase: number;
  /** The app's --memoryBase: __heap_base rounded up to a 64 KiB page. */
  memoryBase: number;
  /** Pages the SQLite module's memory starts with. */
  initialPages: number;
}

/** Reads the layout by instantiating the module with inert imports (it has no start function). */
export function sqliteLayout(wasm: Uint8Array): SqliteLayout {
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

/** Checks a SQLite module: imports only app.morgana_vfs_*, exports memory, __heap_base and the API. */
export function checkSqliteModule(wasm: Uint8Array, what = "the SQLite module"): void {
  const mod = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  for (const imp of WebAssembly.Module.imports(mod))
    if (imp.module !== SQLITE_APP_MODULE || imp.kind !== "function" || !imp.name.startsWith(SQLITE_VFS_PREFIX))
      throw new Error(
        `${what}: unexpected import ${imp.module}.${imp.name} (${imp.kind}): only ${SQLITE_APP_MODULE}.${SQLITE_VFS_PREFIX}* functions are allowed (a libc function missing from sqlite/libc.c?)`,
      );
  const exports = new Map(WebAssembly.Module.exports(mod).map((e) => [e.name, e.kind]));
  if (exports.get("memory") !== "memory") throw new Error(`${what}: exports no memory "memory"`);
  if (exports.get("__heap_base") !== "global") throw new Error(`${what}: exports no global __heap_base`);
  const missing = sqliteApiNames().filter((n) => exports.get(n) !== "function");
  if (missing.length) throw new Error(`${what}: does not export ${missing.join(", ")} (declared in assembly/runtime/sqlite/sqlite3.ts)`);
}

/** build/sqlite.wasm if it exists (for synchronous callers such as the harness), else null. */
export function findSqliteWasm(): string | null {
  return existsSync(SQLITE_WASM) ? SQLITE_WASM : null;
}
