// The pattern of assembly/apps/blkcheck/pattern.ts, computed on the host: a
// hash of (seed, 32-bit word index on the disk), little-endian.

export function word(seed: number, w: number): number {
  const lo = w >>> 0;
  const hi = Math.floor(w / 2 ** 32) >>> 0;
  let x = (seed ^ Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi, 0x85ebca6b)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** The pattern bytes of disk range [off, off + len). */
export function pattern(seed: number, off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < len; i += 4) dv.setUint32(i, word(seed, (off + i) / 4), true);
  return out;
}

/** Whether bytes [off, off + len) of the disk hold the pattern. */
export function holds(disk: Uint8Array, seed: number, off: number, len: number): boolean {
  return Buffer.from(disk.subarray(off, off + len)).equals(Buffer.from(pattern(seed, off, len)));
}

/** Whether bytes [off, off + len) of the disk are all zero. */
export function zero(disk: Uint8Array, off: number, len: number): boolean {
  return disk.subarray(off, off + len).every((b) => b === 0);
}
