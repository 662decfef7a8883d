// Hand-written modules for testing the harness's checks: wat text → wasm bytes (wabt).
import wabtInit from "wabt";

const wabt = await wabtInit();

export function wat(text: string): Uint8Array {
  const mod = wabt.parseWat("test.wat", text);
  try {
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

/** A module that imports `imports` (wat text) and runs `body` as _start. */
export function abiModule(imports: string, body: string): Uint8Array {
  return wat(`(module ${imports} (memory (export "memory") 1) (func (export "_start") ${body}))`);
}
