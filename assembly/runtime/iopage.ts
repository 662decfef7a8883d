// The I/O page region: 4 KiB pages of linear memory that are shared with other
// domains (rings, granted buffers) or replaced by foreign frames (ABI.md §6).
// They come from memory.grow directly, so they are page-aligned and the AS heap
// never owns them: the host may remap them without corrupting the allocator.
// Freed pages return to this region's free list, never to the heap.
//
//   wasm page (64 KiB) from memory.grow = 16 I/O pages
//   ┌──────┬──────┬─ … ─┬──────┐
//   │ 4 KiB│ 4 KiB│     │ 4 KiB│   each handed out by alloc(), zeroed
//   └──────┴──────┴─ … ─┴──────┘

import * as oom from "./oom";

export const PAGE_SIZE: usize = 4096;
const PAGES_PER_GROW: usize = 16; // one wasm page

const free = new Array<usize>();
let allocated: i32 = 0;

/** A zeroed, 4096-aligned page of linear memory, or 0 when memory cannot grow. */
export function alloc(): usize {
  if (free.length == 0) {
    const before = memory.grow(1);
    if (before < 0) return 0;
    oom.ioWasmPages++; // the out-of-memory report says how much went to I/O pages
    const base = <usize>before << 16;
    // Push in reverse so pages are handed out in address order.
    for (let i = PAGES_PER_GROW; i > 0; i--) free.push(base + (i - 1) * PAGE_SIZE);
  }
  const p = free.pop();
  memory.fill(p, 0, PAGE_SIZE);
  allocated++;
  return p;
}

/** Returns a page to the region; the caller has ended every grant and mapping of it. */
export function release(page: usize): void {
  if ((page & (PAGE_SIZE - 1)) != 0) throw new Error("iopage.release: address is not page-aligned");
  free.push(page);
  allocated--;
}

/** Pages currently handed out (leak checks in tests). */
export function inUse(): i32 {
  return allocated;
}
