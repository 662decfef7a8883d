// The native module beside an app in the harness (app.json "native"; tools/lib/native.ts).
// The two modules share one linear memory, the native module's, which the app imports as
// env.memory; the app imports the native functions (SQLite's, lwIP's) from module "native",
// and the native C imports the app's callbacks (morgana_vfs_*, morgana_lwip_*) from module
// "app". The instances are mutually recursive, so the native module's `app` imports are
// trampolines that find the app instance's exports when first called.
import { existsSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { moduleSignatures, ModuleSignatures } from "../lib/wasm-info.ts";
import { NATIVE_APP_MODULE, NATIVE_MODULE, NativeName, nativeWasmPath, selectionId, SHARED_MEMORY } from "../lib/native.ts";

export { NATIVE_MODULE, SHARED_MEMORY };

export interface NativeModule {
  mod: WebAssembly.Module;
  /** The module's bytes: run.ts compiles them again with the domain's memory maximum. */
  bytes: Uint8Array;
  sigs: ModuleSignatures;
  what: string;
}

const compiled = new Map<string, NativeModule>();

/** Compiles (once per content) the native module: `source`, else build/native-<names>.wasm. `fail` builds the error. */
export function loadNative(
  source: string | Uint8Array | undefined,
  names: readonly NativeName[],
  fail: (msg: string) => Error,
): NativeModule {
  let bytes: Uint8Array;
  let what: string;
  if (source instanceof Uint8Array) {
    bytes = source;
    what = "the native module given as bytes";
  } else {
    const path = source ?? nativeWasmPath(names);
    if (source === undefined && !existsSync(path))
      throw fail(
        `the app imports from module "${NATIVE_MODULE}" (native modules ${selectionId(names)}) but ${path} does not exist (run npm run build)`,
      );
    try {
      bytes = readFileSync(path);
    } catch (e: any) {
      throw fail(`cannot read the native module ${path}: ${e.code === "ENOENT" ? "no such file (run npm run build)" : e.message}`);
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
      if (imp.module !== NATIVE_APP_MODULE || imp.kind !== "function")
        throw fail(
          `${what}: imports ${imp.module}.${imp.name} (${imp.kind}); a native module may import only functions of module "${NATIVE_APP_MODULE}"`,
        );
    compiled.set(key, m);
  }
  return m;
}

/** Instantiates the native module with trampolines into the app instance that `app()` returns once it exists. */
export function instantiateNative(nm: NativeModule, app: () => WebAssembly.Instance | undefined): WebAssembly.Instance {
  const imports: Record<string, Function> = {};
  for (const imp of WebAssembly.Module.imports(nm.mod)) {
    const name = imp.name;
    let target: Function | undefined;
    imports[name] = (...args: unknown[]) => {
      if (!target) {
        const inst = app();
        if (!inst) throw new Error(`the native module called ${NATIVE_APP_MODULE}.${name} before the app was instantiated`);
        target = inst.exports[name] as Function;
      }
      return target(...args);
    };
  }
  return new WebAssembly.Instance(nm.mod, { [NATIVE_APP_MODULE]: imports });
}
