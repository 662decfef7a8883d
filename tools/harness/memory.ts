// The domain's memory, counted in 4 KiB frames as the shim counts them (shim/mm.c), so
// that memory.grow in the harness refuses exactly where it refuses under Xen and an
// out-of-memory is testable without Xen.
//
// Under Xen a PV domain of `memory = M` MiB has nr_pages = M * 256 frames. The domain
// builder (libxc's xc_dom_x86.c, in this order) fills the bottom of them with the kernel
// image (its ELF load size, .bss included), the p2m list (8 bytes per frame), the start
// info, xenstore and console pages, the initial page tables that map all of that plus
// 512 KiB, rounded up to 4 MiB, and one boot-stack page. The shim's free pool is the rest
// (mm_init); it takes the linear memory's L3 at once, 16 frames per 64 KiB wasm page,
// an L1 per 2 MiB and an L2 per GiB of linear memory as memory.grow asks
// (mm_linear_grow), and the I/O region's three tables on the first grant (gnttab.c).
// memory.grow(n) returns -1 when the frames it needs are not all free: the limit is a
// page count, and the harness makes it the module's declared memory maximum.
import { DEFAULT_CONFIG } from "../lib/image-config.ts";

/** The xl default the images use (app.json "memory", tools/lib/image-config.ts). */
export const DEFAULT_MEMORY_MIB = DEFAULT_CONFIG.memory;

const FRAME = 4096;
const FRAMES_PER_WASM_PAGE = 16;
/** wasm2c's u32 size field cannot hold 65536 pages (shim/wasm_rt.c MAX_PAGES). */
export const MAX_WASM_PAGES = 65535;
/** The I/O region's L3, L2 and L1, taken on the first grant or map (shim/mm.c mm_io_map). */
export const IO_TABLE_FRAMES = 3;

/**
 * The kernel image's load size estimated from the wasm it is built from: the shim's code,
 * data and .bss (~677 KiB, mostly the stack and table arena) plus native code at about
 * 1.9 bytes per wasm byte. Measured with `npm run build:image`: memgrow 14,153 B of wasm →
 * 720,288 B loaded; sqlcrash 1,178,610 B (with SQLite) → 2,932,424 B. The factor 2 errs
 * on the large side, so the harness never promises more memory than Xen gives.
 */
export function estimateImageBytes(wasmBytes: number): number {
  return 693_400 + 2 * wasmBytes;
}

/** Frames the linear memory of `pages` wasm pages holds: data, L1s and L2s. */
export function linearFrames(pages: number): number {
  const data = pages * FRAMES_PER_WASM_PAGE;
  return data + Math.ceil(data / 512) + Math.ceil(data / (512 * 512));
}

export interface MemoryPlan {
  memoryMiB: number;
  /** start_info.nr_pages. */
  nrPages: number;
  /** Frames below the shim's pool: image, p2m, special pages, boot page tables, boot stack. */
  reservedFrames: number;
  /** The pool after mm_init (its linear-memory L3 taken): frames memory.grow and the I/O tables share. */
  poolFrames: number;
}

export function memoryPlan(memoryMiB: number, imageBytes: number): MemoryPlan {
  if (!(memoryMiB > 0) || !Number.isFinite(memoryMiB)) throw new Error(`memory of ${memoryMiB} MiB: give a positive number of MiB`);
  const nrPages = Math.floor(memoryMiB * 256);
  const image = Math.ceil(imageBytes / FRAME);
  const p2m = Math.ceil((nrPages * 8) / FRAME);
  const special = 3; // start info, xenstore ring, console ring
  const beforeTables = image + p2m + special;
  // L4, L3, L2 and one L1 per 2 MiB of the boot mapping (the tables and the stack + 512 KiB, to 4 MiB).
  const mapped = Math.ceil((beforeTables * FRAME + 512 * 1024) / (4 << 20)) * (4 << 20);
  const tables = 3 + mapped / (2 << 20);
  const reservedFrames = beforeTables + tables + 1; // + the boot stack
  return { memoryMiB, nrPages, reservedFrames, poolFrames: Math.max(0, nrPages - reservedFrames - 1) };
}

/** The most wasm pages the linear memory can reach when `spare` frames of the pool stay free. */
export function maxLinearPages(plan: MemoryPlan, spare = 0): number {
  const frames = plan.poolFrames - spare;
  let pages = Math.min(MAX_WASM_PAGES, Math.floor(frames / FRAMES_PER_WASM_PAGE));
  while (pages > 0 && linearFrames(pages) > frames) pages--;
  return Math.max(0, pages);
}

/**
 * The module's bytes with its (one) defined memory's maximum set to `maxPages`; null when
 * it defines no memory. Only the memory section changes: the same code, data and names.
 */
export function withMemoryMaximum(bytes: Uint8Array, maxPages: number): Uint8Array | null {
  let p = 8;
  const u32 = () => {
    let r = 0,
      shift = 0,
      c: number;
    do {
      c = bytes[p++];
      r += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return r;
  };
  while (p < bytes.length) {
    const start = p;
    const id = bytes[p++];
    const size = u32();
    const body = p;
    const end = body + size;
    if (id === 5) {
      if (u32() !== 1) throw new Error("a module with more than one memory (ABI.md §1 allows one)");
      const flags = u32();
      if (flags & ~1) throw new Error(`memory limits flags 0x${flags.toString(16)} (shared or 64-bit memory) are not supported`);
      const min = u32();
      if (flags & 1) {
        const max = u32();
        maxPages = Math.min(max, maxPages);
      }
      const section = [1, 0x01, ...leb(min), ...leb(Math.max(min, maxPages))];
      const out = new Uint8Array(bytes.length - (end - start) + 1 + leb(section.length).length + section.length);
      out.set(bytes.subarray(0, start), 0);
      let q = start;
      out[q++] = 5;
      for (const b of leb(section.length)) out[q++] = b;
      for (const b of section) out[q++] = b;
      out.set(bytes.subarray(end), q);
      return out;
    }
    p = end;
  }
  return null;
}

function leb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
