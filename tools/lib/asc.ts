// Compiles apps with the AssemblyScript compiler (asconfig.json holds the flags).
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, BUILD_DIR, Flavour, wasmPath } from "./paths.ts";
import { loadAppConfig } from "./image-config.ts";
import { buildSqlite, sqliteLayout } from "./sqlite.ts";
import { tool } from "./exec.ts";

/** The second entry file of an app that uses SQLite: its exports are the VFS functions
 * the SQLite module imports (module "app"). asc exports every entry file's exports. */
export const SQLITE_EXPORTS_ENTRY = join("assembly", "runtime", "sqlite", "exports.ts");

/**
 * The extra asc arguments of an app with app.json "sqlite": true. The app imports
 * SQLite's memory (env.memory) and places its own data above SQLite's stack, data
 * and __heap_base, rounded up to a page. asc computes the initial size from its data
 * end; the host grows SQLite's memory to that size before instantiating the app.
 */
export async function sqliteAscArgs(): Promise<string[]> {
  const built = await buildSqlite();
  const layout = sqliteLayout(readFileSync(built.wasm));
  return [SQLITE_EXPORTS_ENTRY, "--importMemory", "--memoryBase", String(layout.memoryBase)];
}

/** Builds one app in one flavour; returns the wasm path. Throws with asc's diagnostics. */
export async function compileApp(app: string, flavour: Flavour): Promise<string> {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = wasmPath(app, flavour);
  const asc = join(ROOT, "node_modules", ".bin", "asc");
  const config = loadAppConfig(app);
  const args = [
    join("assembly", "apps", app, "main.ts"),
    ...(config.sqlite ? await sqliteAscArgs() : []),
    "--config",
    "asconfig.json",
    "--target",
    flavour,
    "--outFile",
    out,
    "--textFile",
    out.replace(/\.wasm$/, ".wat"),
  ];
  // every diagnostic: the first one is usually the cause
  await tool(asc, args, `asc for app "${app}" (${flavour})`, { tail: Infinity });
  return out;
}
