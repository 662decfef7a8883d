// The test pattern blkcheck writes and verifies: a hash of (seed, 32-bit word
// index on the disk), so every word of every sector differs and a sector
// written to the wrong place is caught. test/block/pattern.ts computes the same.

/** The u32 at byte offset 4·w of the disk, for this seed. */
// @ts-ignore: decorator
@inline export function word(seed: u32, w: u64): u32 {
  let x = seed ^ (<u32>w * 0x9e3779b1) ^ (<u32>(w >> 32) * 0x85ebca6b);
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  x ^= x >> 16;
  return x;
}

/** Fills len bytes at buf with the pattern of disk bytes [offset, offset + len) (both multiples of 4). */
export function fill(buf: usize, len: u32, seed: u32, offset: u64): void {
  const w0 = offset >> 2;
  for (let i: u32 = 0; i < len >> 2; i++) store<u32>(buf + (<usize>i << 2), word(seed, w0 + i));
}

/** The byte offset in buf of the first word that differs from the pattern, or -1. */
export function check(buf: usize, len: u32, seed: u32, offset: u64): i32 {
  const w0 = offset >> 2;
  for (let i: u32 = 0; i < len >> 2; i++) if (load<u32>(buf + (<usize>i << 2)) != word(seed, w0 + i)) return <i32>(i << 2);
  return -1;
}
