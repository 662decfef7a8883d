// Native modules: C compiled to wasm objects by clang (SQLite, lwIP), linked into one wasm
// library that the app imports from, and linked at C level into the image like the app.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { BUILD_DIR } from "./paths.ts";
import { tool } from "./exec.ts";
import { cached, contentKey } from "./cache.ts";

export const WASM_LD = "/usr/bin/wasm-ld-14";

export interface NativeLink {
  /** build/<name>.wasm, and the cached file's name. */
  name: string;
  /** For errors: "the SQLite module". */
  what: string;
  cacheDir: string;
  objects: string[];
  stackBytes: number;
  exports: string[];
  /** Refuses a module that does not export or import what it must (before it is copied). */
  check: (wasm: Uint8Array, path: string) => void;
}

/**
 * Links the objects (cached by their bytes and the link flags), checks the result, and
 * copies it to build/<name>.wasm when it changed. `linked` is false on a cache hit.
 */
export async function linkNativeModule(o: NativeLink): Promise<{ wasm: string; key: string; linked: boolean }> {
  const ldArgs = [
    "--no-entry", // a library: the app calls in
    "--stack-first", // stack at the bottom: an overflow traps at address < 0 instead of corrupting data
    "-z",
    `stack-size=${o.stackBytes}`,
    "--max-memory=4294901760", // 65535 pages: the memory grows as the app's heap does
    "--export=__heap_base", // where the app's data may start (asc --memoryBase)
    "--export=__data_end",
    ...o.exports.map((n) => `--export=${n}`),
  ];
  const key = contentKey(...o.objects.map((f) => readFileSync(f)), ldArgs.join(" "));
  const wasm = join(o.cacheDir, key, `${o.name}.wasm`);
  const linked = !(await cached(wasm, async (tmp) => {
    await tool(WASM_LD, [...ldArgs, ...o.objects, "-o", tmp], `linking ${o.what}`);
  }));
  o.check(readFileSync(wasm), wasm);
  const out = join(BUILD_DIR, `${o.name}.wasm`);
  mkdirSync(BUILD_DIR, { recursive: true });
  if (!existsSync(out) || !readFileSync(out).equals(readFileSync(wasm))) {
    copyFileSync(wasm, `${out}.tmp${process.pid}`);
    renameSync(`${out}.tmp${process.pid}`, out);
  }
  return { wasm, key, linked };
}
