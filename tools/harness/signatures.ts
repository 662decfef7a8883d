// Reads the function signatures of a module's imports and exports from its binary
// (type, import, function and export sections), because a JS host function accepts
// any signature and V8 would not catch a mismatch; and the limits of an imported
// memory, which the JS API does not reflect. The module has already passed
// WebAssembly validation, so the reader only needs to be correct, not defensive.

const VALTYPE: Record<number, string> = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };

export interface ModuleSignatures {
  /** "(i32, i32) -> i32" for each function import, keyed "module.name". */
  imports: Map<string, string>;
  /** The same for each exported function, keyed by export name. */
  exports: Map<string, string>;
  /** Limits of each imported memory, keyed "module.name" (pages). */
  memories: Map<string, { initial: number; maximum?: number }>;
}

export function moduleSignatures(bytes: Uint8Array): ModuleSignatures {
  let p = 8; // magic + version
  const u32 = (): number => {
    let r = 0, shift = 0, b: number;
    do {
      b = bytes[p++];
      r += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return r;
  };
  const name = (): string => {
    const n = u32();
    const s = new TextDecoder().decode(bytes.subarray(p, p + n));
    p += n;
    return s;
  };
  const limits = () => {
    const flags = u32();
    const initial = u32();
    return flags & 1 ? { initial, maximum: u32() } : { initial };
  };
  const types: string[] = [];
  const funcTypes: number[] = []; // function index → type index
  const out: ModuleSignatures = { imports: new Map(), exports: new Map(), memories: new Map() };
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        p++; // 0x60: func type
        const params = Array.from({ length: u32() }, () => VALTYPE[bytes[p++]] ?? "?");
        const results = Array.from({ length: u32() }, () => VALTYPE[bytes[p++]] ?? "?");
        types.push(`(${params.join(", ")}) -> ${results.length ? results.join(", ") : "()"}`);
      }
    } else if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        const key = `${name()}.${name()}`;
        const kind = bytes[p++];
        if (kind === 0) {
          const t = u32();
          funcTypes.push(t);
          out.imports.set(key, types[t]);
        } else if (kind === 1) { p++; limits(); }          // table: reftype, limits
        else if (kind === 2) out.memories.set(key, limits());
        else if (kind === 3) p += 2;                       // global: valtype, mutability
        else u32();                                        // tag
      }
    } else if (id === 3) {
      for (let n = u32(); n > 0; n--) funcTypes.push(u32());
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        const key = name();
        const kind = bytes[p++];
        const index = u32();
        if (kind === 0) out.exports.set(key, types[funcTypes[index]]);
      }
    }
    p = end;
  }
  return out;
}

/** "(i32, i32) -> i32" for each function import, keyed "module.name". */
export function importSignatures(bytes: Uint8Array): Map<string, string> {
  return moduleSignatures(bytes).imports;
}
