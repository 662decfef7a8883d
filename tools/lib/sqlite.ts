// SQLite as a native library (tools/lib/native.ts): SQLite's amalgamation plus sqlite/glue.c
// (the "morgana" VFS, which forwards to functions the app exports, module "app"), compiled
// by clang to wasm32 objects that the native module of an app with app.json
// "native": ["sqlite", ...] links (sqlite/README.md). The app imports SQLite's API from
// module "native" (assembly/runtime/sqlite/sqlite3.ts) and exports the VFS functions
// (assembly/runtime/sqlite/exports.ts, a second asc entry).
//
// The source is the amalgamation better-sqlite3 ships (npm pack, integrity pinned
// below); it is never committed. Every step is cached by content under .cache/sqlite/.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUILD_DIR, ROOT } from "./paths.ts";
import { tool } from "./exec.ts";
import { cacheArea, cached, contentKey as sha, hashDir } from "./cache.ts";
import {
  buildNative,
  codegenFlags,
  CLANG,
  LIBC_INCLUDE,
  NATIVE_APP_MODULE,
  NATIVE_MODULE,
  NativeBuild,
  NativeComponent,
  NativeObjects,
  Toolchain,
} from "./native.ts";

/** Where the amalgamation comes from: better-sqlite3 12.11.1 ships SQLite 3.53.2. */
export const SQLITE_PACKAGE = "better-sqlite3@12.11.1";
/** `npm view better-sqlite3@12.11.1 dist.integrity`: the tarball must match it. */
export const SQLITE_INTEGRITY = "sha512-dq9AtApgg5PGFtBzPFSBl3HZQjHok5gaQCM6zh2Yk0aSmDCs1CbnVI8/HgASQkNKsWFpseIO9beg5xxpYhbIfA==";
/** The prefix of the VFS functions SQLite's glue imports from the app (module "app"). */
export const SQLITE_VFS_PREFIX = "morgana_vfs_";

const SRC_DIR = join(ROOT, "sqlite");
const DECLS = join(ROOT, "assembly", "runtime", "sqlite", "sqlite3.ts");
const CACHE = cacheArea("sqlite");
/** nativeWasmPath(["sqlite"]), spelt out: native.ts's bindings are not ready while this file loads (the import cycle). */
export const SQLITE_WASM = join(BUILD_DIR, "native-sqlite.wasm");
/** SQLite's C stack (wasm-ld --stack-first puts it at the bottom of memory). */
export const SQLITE_STACK = 256 * 1024;
/** The asc entry exporting the VFS functions SQLite imports. */
export const SQLITE_EXPORTS_ENTRY = join("assembly", "runtime", "sqlite", "exports.ts");

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

/** The functions SQLite's objects must export: every @external("native", name) in
 * assembly/runtime/sqlite/sqlite3.ts, so the declarations and the module never drift. */
export function sqliteApiNames(): string[] {
  const src = readFileSync(DECLS, "utf8");
  const re = new RegExp(`@external\\(\\s*"${NATIVE_MODULE}"\\s*,\\s*"(\\w+)"\\s*\\)`, "g");
  const names = [...src.matchAll(re)].map((m) => m[1]);
  if (names.length === 0) throw new Error(`${DECLS}: declares no @external("${NATIVE_MODULE}", ...) function`);
  return [...new Set(names)];
}

export interface SqliteBuild extends NativeBuild {
  /** SQLITE_VERSION from sqlite3.h. */
  version: string;
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

/** SQLite for the native module's link: its objects, API, stack and VFS imports. */
export function sqliteComponent(): NativeComponent {
  return {
    name: "sqlite",
    what: "SQLite",
    stackBytes: SQLITE_STACK,
    exports: sqliteApiNames,
    provides: (n) => n.startsWith("sqlite3_") || n.startsWith("morgana_sqlite_"),
    imports: (n) => n.startsWith(SQLITE_VFS_PREFIX),
    importsWhat: `${NATIVE_APP_MODULE}.${SQLITE_VFS_PREFIX}* functions`,
    ascEntries: [SQLITE_EXPORTS_ENTRY],
    exportsHint: `asc entry ${SQLITE_EXPORTS_ENTRY} missing?`,
    compile: compileSqlite,
  };
}

/** The native module of the selection ["sqlite"] (build/native-sqlite.wasm), with SQLite's version. */
export async function buildSqlite(opts: SqliteOptions = {}): Promise<SqliteBuild> {
  const b = await buildNative(["sqlite"], opts);
  return { ...b, version: b.versions.sqlite! };
}

/** Compiles sqlite3.c and glue.c (or finds them in the cache): each object keyed by its
 * source, the headers, the flags and the compiler. */
async function compileSqlite(tc: Toolchain, log: (l: string) => void): Promise<NativeObjects> {
  const src = await amalgamation(log);
  const version = headerVersion(src);
  const cf = codegenFlags(tc.resourceDir, src);
  const includes = hashDir(LIBC_INCLUDE);
  const units = [
    { name: "sqlite3.c", file: join(src, "sqlite3.c"), id: SQLITE_INTEGRITY, args: [...cf, ...SQLITE_DEFS] },
    { name: "glue.c", file: join(SRC_DIR, "glue.c"), id: "", args: [...cf, ...SQLITE_DEFS] },
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
        sha(u.name, content, includes, tc.clangVersion, u.args.join(" ").replaceAll(src, "<src>")),
        u.name.replace(/\.c$/, ".o"),
      );
      const c0 = performance.now();
      const hit = await cached(out, async (tmp) => {
        log(`  sqlite   compiling ${u.name}`);
        await tool(CLANG, [...u.args, "-c", u.file, "-o", tmp], `compiling ${u.name} for SQLite`);
      });
      if (!hit) {
        compiled.push(u.name);
        compileMs[u.name] = performance.now() - c0;
      }
      return out;
    }),
  );
  writeFileSync(join(CACHE, "version"), version + "\n");
  return { objects, compiled, compileMs, version };
}
