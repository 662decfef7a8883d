// The SQLite module beside an app in the harness (app.json "sqlite": true; sqlite/README.md).
// The two modules share one linear memory, SQLite's, which the app imports as env.memory;
// the app imports SQLite's API from module "sqlite", and SQLite imports the app's VFS
// functions from module "app". The instances are mutually recursive, so SQLite's `app`
// imports are trampolines that find the app instance's exports when first called.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { moduleSignatures, ModuleSignatures } from "../lib/wasm-info.ts";
import { findSqliteWasm, SQLITE_APP_MODULE, SQLITE_MODULE } from "../lib/sqlite.ts";

export { SQLITE_MODULE };
export const SHARED_MEMORY = "env.memory";

export interface SqliteModule {
  mod: WebAssembly.Module;
  /** The module's bytes: run.ts compiles them again with the domain's memory maximum. */
  bytes: Uint8Array;
  sigs: ModuleSignatures;
  what: string;
}

const compiled = new Map<string, SqliteModule>();

/** Compiles (once per content) the SQLite module: `source`, else build/sqlite.wasm. `fail` builds the error. */
export function loadSqlite(source: string | Uint8Array | undefined, fail: (msg: string) => Error): SqliteModule {
  let bytes: Uint8Array;
  let what: string;
  if (source instanceof Uint8Array) {
    bytes = source;
    what = "the SQLite module";
  } else {
    const path = source ?? findSqliteWasm();
    if (!path) throw fail('the app imports from module "sqlite" but build/sqlite.wasm does not exist (run npm run build)');
    try {
      bytes = readFileSync(path);
    } catch (e: any) {
      throw fail(`cannot read the SQLite module ${path}: ${e.code === "ENOENT" ? "no such file (run npm run build)" : e.message}`);
    }
    what = path;
  }
  const key = createHash("sha256").update(bytes).digest("hex");
  let m = compiled.get(key);
  if (!m) {
    let mod: WebAssembly.Module;
    try {
      mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    } catch (e: any) {
      throw fail(`${what} is not a valid wasm module: ${e.message}`);
    }
    m = { mod, bytes, sigs: moduleSignatures(bytes), what };
    const exp = WebAssembly.Module.exports(mod);
    if (!exp.some((e) => e.name === "memory" && e.kind === "memory"))
      throw fail(`${what}: exports no memory "memory" to share with the app`);
    for (const imp of WebAssembly.Module.imports(mod))
      if (imp.module !== SQLITE_APP_MODULE || imp.kind !== "function")
        throw fail(
          `${what}: imports ${imp.module}.${imp.name} (${imp.kind}); a SQLite module may import only functions of module "${SQLITE_APP_MODULE}"`,
        );
    compiled.set(key, m);
  }
  return m;
}

/** Checks the app against the SQLite module: what each imports from the other exists with the same signature. */
export function checkLink(app: ModuleSignatures, appWhat: string, sq: SqliteModule, fail: (msg: string) => Error): void {
  for (const [key, sig] of app.imports) {
    if (!key.startsWith(`${SQLITE_MODULE}.`)) continue;
    const name = key.slice(SQLITE_MODULE.length + 1);
    const have = sq.sigs.exports.get(name);
    if (have === undefined)
      throw fail(
        `${appWhat}: import ${key} is not exported by the SQLite module ${sq.what} (assembly/runtime/sqlite/sqlite3.ts and the build's export list disagree?)`,
      );
    if (have !== sig) throw fail(`${appWhat}: import ${key} has type ${sig}, but the SQLite module exports it as ${have}`);
  }
  for (const [key, sig] of sq.sigs.imports) {
    const name = key.slice(SQLITE_APP_MODULE.length + 1);
    const have = app.exports.get(name);
    if (have === undefined)
      throw fail(
        `${appWhat}: exports no function ${name}, which the SQLite module imports (asc entry assembly/runtime/sqlite/exports.ts missing?)`,
      );
    if (have !== sig) throw fail(`${appWhat}: export ${name} has type ${have}, but the SQLite module imports it as ${sig}`);
  }
}

/** Instantiates SQLite with trampolines into the app instance that `app()` returns once it exists. */
export function instantiateSqlite(sq: SqliteModule, app: () => WebAssembly.Instance | undefined): WebAssembly.Instance {
  const imports: Record<string, Function> = {};
  for (const imp of WebAssembly.Module.imports(sq.mod)) {
    const name = imp.name;
    let target: Function | undefined;
    imports[name] = (...args: unknown[]) => {
      if (!target) {
        const inst = app();
        if (!inst) throw new Error(`the SQLite module called app.${name} before the app was instantiated`);
        target = inst.exports[name] as Function;
      }
      return target(...args);
    };
  }
  return new WebAssembly.Instance(sq.mod, { [SQLITE_APP_MODULE]: imports });
}
