// Compiles apps with the AssemblyScript compiler (asconfig.json holds the flags).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, BUILD_DIR, Flavour, wasmPath } from "./paths.ts";

const run = promisify(execFile);

/** Builds one app in one flavour; returns the wasm path. Throws with asc's diagnostics. */
export async function compileApp(app: string, flavour: Flavour): Promise<string> {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = wasmPath(app, flavour);
  const asc = join(ROOT, "node_modules", ".bin", "asc");
  const args = [
    join("assembly", "apps", app, "main.ts"),
    "--config", "asconfig.json",
    "--target", flavour,
    "--outFile", out,
    "--textFile", out.replace(/\.wasm$/, ".wat"),
  ];
  try {
    await run(asc, args, { cwd: ROOT, maxBuffer: 64 << 20 });
  } catch (e: any) {
    throw new Error(`asc failed for app "${app}" (${flavour}):\n${e.stderr || e.stdout || e.message}`);
  }
  return out;
}
