// Reads the function signatures of a module's imports from its binary (type and
// import sections), because a JS host function accepts any signature and V8
// would not catch a mismatch. The module has already passed WebAssembly
// validation, so the reader only needs to be correct, not defensive.

const VALTYPE: Record<number, string> = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };

/** "(i32, i32) -> i32" for each function import, keyed "module.name". */
export function importSignatures(bytes: Uint8Array): Map<string, string> {
  let p = 8; // magic + version
  const u32 = (): number => {
    let r = 0, shift = 0, b: number;
    do {
      b = bytes[p++];
      r |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return r >>> 0;
  };
  const name = (): string => {
    const n = u32();
    const s = new TextDecoder().decode(bytes.subarray(p, p + n));
    p += n;
    return s;
  };
  const types: string[] = [];
  const out = new Map<string, string>();
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
        if (kind === 0) out.set(key, types[u32()]);
        else break; // only function imports are legal in a Morgana module; loadModule rejects the rest
      }
      return out;
    }
    p = end;
  }
  return out;
}
