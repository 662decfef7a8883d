// Merges a module's adjacent active data segments before wasm2c: asc emits one segment
// per static string or object (echo: 369), and wasm2c turns each into its own array and
// a bounds-checked memcpy in init_memories (about 50 bytes of x86 code apiece: 18 KB of
// echo's image). One segment per run of segments that lie back to back changes nothing
// the module sees: the bytes between them (at most MAX_GAP) are zero in a fresh memory
// and filled only when no other segment writes them; segments keep their order.
import { wasmSections } from "./wasm-info.ts";

const SECTION_DATA = 11;
const SECTION_DATACOUNT = 12;
const SECTION_CODE = 10;
/** Zero bytes a merge may fill in between two segments (asc aligns its statics to 16 at most). */
const MAX_GAP = 16;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let c = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) c |= 0x80;
    out.push(c);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const c = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(c & 0x40)) || (n === -1 && c & 0x40)) return (out.push(c), out);
    out.push(c | 0x80);
  }
}

interface Segment {
  offset: number;
  data: Uint8Array;
}

/** The module with its data segments merged, or the module itself when there is nothing to
 * merge or it has a segment this does not handle (passive, another memory, a computed
 * offset) or may use segments by index (memory.init / data.drop: any 0xFC 0x08 / 0xFC 0x09
 * byte pair in its code, which over-approximates). Returns the segment counts for the log. */
export function mergeDataSegments(bytes: Uint8Array): { bytes: Uint8Array; before: number; after: number } {
  const secs = wasmSections(bytes);
  const data = secs.find((s) => s.id === SECTION_DATA);
  const same = (n: number) => ({ bytes, before: n, after: n });
  if (!data) return same(0);
  const code = secs.find((s) => s.id === SECTION_CODE);
  if (code)
    for (let i = code.body; i + 1 < code.end; i++)
      if (bytes[i] === 0xfc && (bytes[i + 1] === 0x08 || bytes[i + 1] === 0x09)) return same(-1);
  let p = data.body;
  const u32 = () => {
    let r = 0,
      shift = 0,
      c: number;
    do {
      if (p >= data.end || shift > 28) throw new Error(`malformed wasm: a LEB128 number at byte ${p} of the data section`);
      c = bytes[p++];
      r += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return r;
  };
  const s32 = () => {
    let r = 0,
      shift = 0,
      c: number;
    do {
      if (p >= data.end || shift > 28) throw new Error(`malformed wasm: a LEB128 number at byte ${p} of the data section`);
      c = bytes[p++];
      r |= (c & 0x7f) << shift;
      shift += 7;
    } while (c & 0x80);
    return shift < 32 && c & 0x40 ? r | (-1 << shift) : r;
  };
  const count = u32();
  const segs: Segment[] = [];
  for (let i = 0; i < count; i++) {
    if (u32() !== 0 || bytes[p++] !== 0x41) return same(count); // not "active, memory 0, i32.const"
    const offset = s32() >>> 0;
    if (bytes[p++] !== 0x0b) return same(count);
    const len = u32();
    if (len > data.end - p) throw new Error(`truncated wasm: data segment ${i} passes the end of the data section`);
    segs.push({ offset, data: bytes.subarray(p, p + len) });
    p += len;
  }
  // Runs of segments in offset order, each starting at most MAX_GAP bytes after the previous one ends.
  // A gap is filled with zeros only when no segment writes any byte of it.
  const unwritten = (from: number, to: number) => segs.every((t) => t.offset >= to || t.offset + t.data.length <= from);
  const runs: Segment[][] = [];
  for (const s of segs) {
    const run = runs[runs.length - 1];
    const last = run?.[run.length - 1];
    const end = last ? last.offset + last.data.length : 0;
    if (last && s.offset >= end && s.offset - end <= MAX_GAP && (s.offset === end || unwritten(end, s.offset))) run.push(s);
    else runs.push([s]);
  }
  if (runs.length === segs.length) return same(count);
  const body: number[] = leb(runs.length);
  const chunks: Uint8Array[] = [];
  for (const run of runs) {
    const start = run[0].offset;
    const end = run[run.length - 1].offset + run[run.length - 1].data.length;
    const merged = new Uint8Array(end - start);
    for (const s of run) merged.set(s.data, s.offset - start);
    chunks.push(Uint8Array.from([0, 0x41, ...sleb(start | 0), 0x0b, ...leb(merged.length)]), merged);
  }
  const dataBody = Buffer.concat([Uint8Array.from(body), ...chunks]);
  const out: Uint8Array[] = [];
  for (const s of secs) {
    if (s.id === SECTION_DATA) out.push(Uint8Array.from([SECTION_DATA, ...leb(dataBody.length)]), dataBody);
    else if (s.id === SECTION_DATACOUNT) {
      const n = leb(runs.length);
      out.push(Uint8Array.from([SECTION_DATACOUNT, ...leb(n.length), ...n]));
    } else out.push(bytes.subarray(s.start, s.end));
  }
  return { bytes: Buffer.concat([bytes.subarray(0, 8), ...out]), before: count, after: runs.length };
}
