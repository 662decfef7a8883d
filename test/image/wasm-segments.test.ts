// The image build merges a module's back-to-back data segments before wasm2c
// (tools/lib/wasm-segments.ts): the merged module must start with the same memory,
// keep segments that are far apart or overlap as they are, and leave alone modules
// it cannot merge safely.
import { describe, it, expect } from "vitest";
import { wat } from "../helpers/wat.ts";
import { mergeDataSegments } from "../../tools/lib/wasm-segments.ts";
import { parseAppConfig } from "../../tools/lib/image-config.ts";

function memoryOf(bytes: Uint8Array, n: number): Uint8Array {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(Uint8Array.from(bytes)));
  return new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer.slice(0, n));
}

describe("mergeDataSegments", () => {
  it("merges adjacent and nearly adjacent segments; the memory starts the same", async () => {
    const mod = wat(`(module (memory (export "memory") 1)
      (data (i32.const 16) "abc") (data (i32.const 19) "de") (data (i32.const 30) "fgh")
      (data (i32.const 1000) "far") (data (i32.const 1001) "X")
      (data (i32.const 2000) "\\00\\ff"))`);
    const m = mergeDataSegments(mod);
    expect([m.before, m.after]).toEqual([6, 4]); // 16..33 one; 1000; 1001 overlaps it (kept after it); 2000
    expect(m.bytes.length).toBeLessThan(mod.length);
    expect(memoryOf(m.bytes, 4096)).toEqual(memoryOf(mod, 4096));
    const again = mergeDataSegments(m.bytes);
    expect([again.before, again.after]).toEqual([4, 4]);
    expect(again.bytes).toBe(m.bytes);
  });

  it("does not zero a gap another segment writes", async () => {
    const mod = wat(`(module (memory (export "memory") 1)
      (data (i32.const 104) "gap") (data (i32.const 100) "ab") (data (i32.const 110) "cd"))`);
    const m = mergeDataSegments(mod);
    expect(m.after).toBe(3);
    expect(memoryOf(m.bytes, 256)).toEqual(memoryOf(mod, 256));
  });

  it("updates the data count section when there is one (bulk memory)", async () => {
    const mod = wat(`(module (memory (export "memory") 1)
      (data (i32.const 8) "ab") (data (i32.const 10) "cd")
      (func (export "f") (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))`);
    const m = mergeDataSegments(mod);
    expect(m.after).toBe(1);
    expect(WebAssembly.validate(Uint8Array.from(m.bytes))).toBe(true);
    expect(memoryOf(m.bytes, 64)).toEqual(memoryOf(mod, 64));
  });

  it("leaves alone a module that may use segments by index, or has passive ones", () => {
    const init = wat(`(module (memory (export "memory") 1)
      (data (i32.const 8) "ab") (data (i32.const 10) "cd") (data $p "xy")
      (func (export "f") (memory.init $p (i32.const 0) (i32.const 0) (i32.const 2))))`);
    expect(mergeDataSegments(init).bytes).toBe(init);
    const passive = wat(`(module (memory 1) (data (i32.const 8) "ab") (data (i32.const 10) "cd") (data "xy"))`);
    expect(mergeDataSegments(passive).bytes).toBe(passive);
  });
});

describe('app.json "optimize"', () => {
  it('is "speed" by default, takes "size", refuses anything else', () => {
    expect(parseAppConfig("{}", "x").optimize).toBe("speed");
    expect(parseAppConfig('{"optimize": "size"}', "x").optimize).toBe("size");
    expect(() => parseAppConfig('{"optimize": "small"}', "a/app.json")).toThrow(
      /a\/app\.json: "optimize" must be "speed" or "size", got "small"/,
    );
  });
});
