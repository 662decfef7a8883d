// The harness's signature checks read the module with the tools' one wasm reader
// (tools/lib/wasm-info.ts); this module only keeps the harness's import path.
export { moduleSignatures, importSignatures } from "../lib/wasm-info.ts";
export type { ModuleSignatures } from "../lib/wasm-info.ts";
