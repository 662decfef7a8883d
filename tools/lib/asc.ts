// Compiles apps with the AssemblyScript compiler (asconfig.json holds the flags).
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, BUILD_DIR, Flavour, wasmPath } from "./paths.ts";
import { loadAppConfig } from "./image-config.ts";
import { buildNative, checkNativeSelection, nativeComponent, nativeLayout, NativeName } from "./native.ts";
import { moduleSignatures } from "./wasm-info.ts";
import { tool } from "./exec.ts";

/**
 * The extra asc arguments of an app with app.json "native": [...]. The app imports the
 * native module's memory (env.memory) and places its own data above the native stack,
 * data and __heap_base, rounded up to a page; the libraries' asc entry files export the
 * functions their C imports (e.g. SQLite's VFS). asc computes the initial size from its
 * data end; the host grows the native memory to that size before instantiating the app.
 */
export async function nativeAscArgs(names: readonly NativeName[]): Promise<string[]> {
  const built = await buildNative(names);
  const layout = nativeLayout(readFileSync(built.wasm));
  const entries = names.flatMap((n) => nativeComponent(n).ascEntries);
  return [...entries, "--importMemory", "--memoryBase", String(layout.memoryBase)];
}

/** Builds one app in one flavour; returns the wasm path. Throws with asc's diagnostics, or
 * when the app imports a native function its app.json "native" does not select. */
export async function compileApp(app: string, flavour: Flavour): Promise<string> {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = wasmPath(app, flavour);
  const asc = join(ROOT, "node_modules", ".bin", "asc");
  const config = loadAppConfig(app);
  const args = [
    join("assembly", "apps", app, "main.ts"),
    ...(config.native.length ? await nativeAscArgs(config.native) : []),
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
  checkNativeSelection(moduleSignatures(readFileSync(out)), `app "${app}" (assembly/apps/${app})`, config.native, (m) => new Error(m));
  return out;
}
