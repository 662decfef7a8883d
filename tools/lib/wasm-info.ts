// The one reader of the wasm binary format (https://webassembly.github.io/spec/core/binary/)
// the tools use: imports and exports with their function signatures (a JS host function
// accepts any signature, so V8 would not catch a mismatch), the limits of imported
// memories (the JS API does not reflect them), the number of imported and defined
// functions, and the function names of the `name` section (trap reports). Every read is
// bounds-checked: a truncated or malformed module is an error naming what is wrong,
// never a silent misread.

export interface Limits {
  initial: number;
  maximum?: number;
}
export interface WasmImport {
  module: string;
  name: string;
  kind: number;
  /** For a function: its signature, "(i32, i32) -> i32". */
  type?: string;
  /** For a memory: its limits, in pages. */
  limits?: Limits;
}
export interface WasmExport {
  name: string;
  kind: number;
  index: number;
}
export interface WasmInfo {
  imports: WasmImport[];
  exports: WasmExport[];
  importedFuncs: number;
  definedFuncs: number;
  /** Function index → signature, imported functions first. */
  funcTypes: string[];
  /** Function index → name, from the `name` section (custom section, subsection 1). */
  funcNames: Map<number, string>;
}

export const KIND_FUNC = 0;
export const KIND_TABLE = 1;
export const KIND_MEMORY = 2;
export const KIND_GLOBAL = 3;

const SECTION_TYPE = 1,
  SECTION_IMPORT = 2,
  SECTION_FUNCTION = 3,
  SECTION_EXPORT = 7,
  SECTION_CUSTOM = 0;
const FUNC_TYPE = 0x60;
const VALTYPE: Record<number, string> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

class Reader {
  constructor(
    readonly b: Uint8Array,
    public p = 0,
    public end = b.length,
  ) {}
  byte(): number {
    if (this.p >= this.end) throw new Error(`truncated wasm: a read at byte ${this.p} passes the end of its section (${this.end})`);
    return this.b[this.p++];
  }
  /** An unsigned LEB128 of at most 32 bits (5 bytes). */
  u32(): number {
    let r = 0,
      shift = 0,
      c: number;
    do {
      if (shift > 28) throw new Error(`malformed wasm: a LEB128 number at byte ${this.p} is longer than 5 bytes`);
      c = this.byte();
      r += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    if (r > 0xffffffff) throw new Error(`malformed wasm: a LEB128 number before byte ${this.p} exceeds 32 bits`);
    return r;
  }
  bytes(n: number): Uint8Array {
    if (n > this.end - this.p) throw new Error(`truncated wasm: ${n} bytes at byte ${this.p} pass the end of their section (${this.end})`);
    const s = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return s;
  }
  name(): string {
    return new TextDecoder().decode(this.bytes(this.u32()));
  }
  limits(): Limits {
    const flags = this.u32();
    const initial = this.u32();
    return flags & 1 ? { initial, maximum: this.u32() } : { initial };
  }
}

export interface Section {
  id: number;
  /** first byte of the section (its id) */ start: number;
  /** first byte of its contents */ body: number;
  end: number;
}

/** The sections of a module, checked to lie within it; throws for anything but a wasm 1 binary. */
export function wasmSections(bytes: Uint8Array): Section[] {
  const r = new Reader(bytes);
  if (bytes.length < 8) throw new Error("not a wasm binary: shorter than its 8-byte header");
  const magic = r.bytes(4);
  if (magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) throw new Error("not a wasm binary: no \\0asm magic");
  const version = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
  if (version !== 1) throw new Error(`not a wasm binary of version 1 (version ${version})`);
  r.p = 8;
  const out: Section[] = [];
  while (r.p < bytes.length) {
    const start = r.p;
    const id = r.byte();
    const size = r.u32();
    const body = r.p;
    if (size > bytes.length - body)
      throw new Error(`truncated wasm: section ${id} at byte ${start} has ${size} bytes, the module ends after ${bytes.length - body}`);
    out.push({ id, start, body, end: body + size });
    r.p = body + size;
  }
  return out;
}

/** Reads imports, exports, signatures and (unless `names` is false) the function names. */
export function readWasm(bytes: Uint8Array, opts: { names?: boolean } = {}): WasmInfo {
  const info: WasmInfo = { imports: [], exports: [], importedFuncs: 0, definedFuncs: 0, funcTypes: [], funcNames: new Map() };
  const types: string[] = [];
  const typeOf = (t: number) => {
    if (t >= types.length) throw new Error(`malformed wasm: type index ${t} out of range (${types.length} types)`);
    return types[t];
  };
  for (const s of wasmSections(bytes)) {
    const r = new Reader(bytes, s.body, s.end);
    if (s.id === SECTION_TYPE) {
      for (let n = r.u32(); n > 0; n--) {
        const form = r.byte();
        if (form !== FUNC_TYPE) throw new Error(`unsupported wasm: type form 0x${form.toString(16)} (only function types, 0x60)`);
        const params = Array.from({ length: r.u32() }, () => VALTYPE[r.byte()] ?? "?");
        const results = Array.from({ length: r.u32() }, () => VALTYPE[r.byte()] ?? "?");
        types.push(`(${params.join(", ")}) -> ${results.length ? results.join(", ") : "()"}`);
      }
    } else if (s.id === SECTION_IMPORT) {
      for (let n = r.u32(); n > 0; n--) {
        const imp: WasmImport = { module: r.name(), name: r.name(), kind: r.byte() };
        if (imp.kind === KIND_FUNC) {
          imp.type = typeOf(r.u32());
          info.funcTypes.push(imp.type);
          info.importedFuncs++;
        } else if (imp.kind === KIND_TABLE) {
          r.byte();
          r.limits();
        } // reftype, limits
        else if (imp.kind === KIND_MEMORY) imp.limits = r.limits();
        else if (imp.kind === KIND_GLOBAL) {
          r.byte();
          r.byte();
        } // valtype, mutability
        else r.u32(); // tag
        info.imports.push(imp);
      }
    } else if (s.id === SECTION_FUNCTION) {
      info.definedFuncs = r.u32();
      for (let n = info.definedFuncs; n > 0; n--) info.funcTypes.push(typeOf(r.u32()));
    } else if (s.id === SECTION_EXPORT) {
      for (let n = r.u32(); n > 0; n--) info.exports.push({ name: r.name(), kind: r.byte(), index: r.u32() });
    } else if (s.id === SECTION_CUSTOM && opts.names !== false && r.name() === "name") {
      while (r.p < s.end) {
        const sub = r.byte(),
          subSize = r.u32();
        const sr = new Reader(bytes, r.p, r.p + subSize);
        if (sr.end > s.end) throw new Error(`truncated wasm: name subsection ${sub} passes the end of the name section`);
        if (sub === 1)
          for (let n = sr.u32(); n > 0; n--) {
            const idx = sr.u32();
            info.funcNames.set(idx, sr.name());
          }
        r.p = sr.end;
      }
    } else continue;
    // a section whose contents end early or late is corrupt, whatever the reader made of it
    if (s.id !== SECTION_CUSTOM && r.p !== s.end)
      throw new Error(`malformed wasm: section ${s.id} at byte ${s.start} has ${s.end - r.p} bytes left over`);
  }
  return info;
}

export interface ModuleSignatures {
  /** "(i32, i32) -> i32" for each function import, keyed "module.name". */
  imports: Map<string, string>;
  /** The same for each exported function, keyed by export name. */
  exports: Map<string, string>;
  /** Limits of each imported memory, keyed "module.name" (pages). */
  memories: Map<string, Limits>;
}

/** The signatures of a module's function imports and exports and its imported memories' limits. */
export function moduleSignatures(bytes: Uint8Array): ModuleSignatures {
  const info = readWasm(bytes, { names: false });
  const out: ModuleSignatures = { imports: new Map(), exports: new Map(), memories: new Map() };
  for (const i of info.imports) {
    if (i.kind === KIND_FUNC) out.imports.set(`${i.module}.${i.name}`, i.type!);
    else if (i.kind === KIND_MEMORY) out.memories.set(`${i.module}.${i.name}`, i.limits!);
  }
  for (const e of info.exports) {
    if (e.kind !== KIND_FUNC) continue;
    if (e.index >= info.funcTypes.length)
      throw new Error(`malformed wasm: export ${e.name} names function ${e.index} of ${info.funcTypes.length}`);
    out.exports.set(e.name, info.funcTypes[e.index]);
  }
  return out;
}

/** "(i32, i32) -> i32" for each function import, keyed "module.name". */
export function importSignatures(bytes: Uint8Array): Map<string, string> {
  return moduleSignatures(bytes).imports;
}
