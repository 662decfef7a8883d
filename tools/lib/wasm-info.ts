// Reads what the image build needs from a wasm binary: imports, exports, the number
// of imported and defined functions, and the function names of the `name` section.
// A small reader of the binary format (https://webassembly.github.io/spec/core/binary/).

export interface WasmImport { module: string; name: string; kind: number }
export interface WasmInfo {
  imports: WasmImport[];
  exports: { name: string; kind: number }[];
  importedFuncs: number;
  definedFuncs: number;
  /** Function index → name, from the `name` section (custom section, subsection 1). */
  funcNames: Map<number, string>;
}

export const KIND_FUNC = 0;
export const KIND_MEMORY = 2;

class Reader {
  constructor(readonly b: Uint8Array, public p = 0) {}
  byte(): number {
    if (this.p >= this.b.length) throw new Error("truncated wasm");
    return this.b[this.p++];
  }
  u32(): number {
    let r = 0, shift = 0, c: number;
    do { c = this.byte(); r += (c & 0x7f) * 2 ** shift; shift += 7; } while (c & 0x80);
    return r;
  }
  bytes(n: number): Uint8Array { const s = this.b.subarray(this.p, this.p + n); this.p += n; return s; }
  name(): string { return new TextDecoder().decode(this.bytes(this.u32())); }
  limits(): void { const f = this.u32(); this.u32(); if (f & 1) this.u32(); }
}

export function readWasm(bytes: Uint8Array): WasmInfo {
  const r = new Reader(bytes);
  const magic = r.bytes(8);
  if (magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) throw new Error("not a wasm binary");
  const info: WasmInfo = { imports: [], exports: [], importedFuncs: 0, definedFuncs: 0, funcNames: new Map() };
  while (r.p < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.p + size;
    if (id === 2) {
      for (let n = r.u32(); n > 0; n--) {
        const module = r.name(), name = r.name(), kind = r.byte();
        if (kind === 0) { r.u32(); info.importedFuncs++; }
        else if (kind === 1) { r.byte(); r.limits(); }
        else if (kind === 2) r.limits();
        else if (kind === 3) { r.byte(); r.byte(); }
        else r.u32();
        info.imports.push({ module, name, kind });
      }
    } else if (id === 3) {
      info.definedFuncs = r.u32();
    } else if (id === 7) {
      for (let n = r.u32(); n > 0; n--) { const name = r.name(); const kind = r.byte(); r.u32(); info.exports.push({ name, kind }); }
    } else if (id === 0 && r.name() === "name") {
      while (r.p < end) {
        const sub = r.byte(), subSize = r.u32(), subEnd = r.p + subSize;
        if (sub === 1) for (let n = r.u32(); n > 0; n--) { const idx = r.u32(); info.funcNames.set(idx, r.name()); }
        r.p = subEnd;
      }
    }
    r.p = end;
  }
  return info;
}
