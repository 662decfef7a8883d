// The on-disk layout of a Morgana SQLite disk: no filesystem, three extents and a
// superblock kept in two copies. Pure data: no I/O here (vfs.ts does the I/O).
//
//   block (4 KiB)
//   0            superblock copy A  ┐ updated alternately; the valid copy with the
//   1            superblock copy B  ┘ newer generation is current (a torn update
//                                     loses only the copy being written)
//   2 … 2+J−1    rollback journal extent (J blocks)
//   2+J … +D−1   database extent (D blocks)
//   2+J+D … end  checksum extent (S blocks, version 2): a CRC-32C pair for every
//                512-byte sector of the journal and database (blocksum.ts)
//
// Superblock, little-endian:
//   0  u8[16] magic "MorganaSQLiteVFS"     80  u64 journal bytes (size as of its last sync)
//   16 u32    version (1 or 2)             88  u8[64] database name, NUL-padded
//   20 u32    block size (4096)            152 u64 checksum start  (version 2; 0 in 1)
//   24 u64    generation                   160 u64 checksum blocks (version 2; 0 in 1)
//   32 u64    disk blocks when formatted   168 … 4091 zero
//   40 u64    journal start  48 u64 journal blocks
//   56 u64    database start 64 u64 database blocks
//   72 u64    database bytes (size as of its last sync)
//   4092 u32  CRC-32 (IEEE) of bytes 0 … 4091
//
// Version 1 (no checksum extent) is still mounted, without block checksums; new
// disks are formatted version 2 unless the app asks otherwise (vfs.formatChecksums).

export const BLOCK: i32 = 4096;
export const MAGIC = "MorganaSQLiteVFS";
/** The newest version this runtime writes; it reads 1 and 2. */
export const VERSION: u32 = 2;
export const VERSION_PLAIN: u32 = 1;
export const SUPER_BLOCKS: u64 = 2;
export const NAME_MAX: i32 = 63;
/** Smallest disk worth formatting: superblocks + 16 journal blocks + 32 database blocks (+ 1 checksum block). */
export const MIN_BLOCKS: u64 = 51;
export const MIN_PLAIN: u64 = 50;
/** Database and journal blocks one checksum block covers (blocksum.ts: 8 sectors × 63 entries / 8). */
export const SUM_COVER: u64 = 63;

const O_MAGIC = 0;
const O_VERSION = 16;
const O_BLOCK = 20;
const O_GENERATION = 24;
const O_DISK = 32;
const O_JSTART = 40;
const O_JBLOCKS = 48;
const O_DSTART = 56;
const O_DBLOCKS = 64;
const O_DBYTES = 72;
const O_JBYTES = 80;
const O_NAME = 88;
const O_SSTART = 152;
const O_SBLOCKS = 160;
const O_CRC = 4092;

export class Superblock {
  version: u32 = VERSION;
  generation: u64 = 0;
  diskBlocks: u64 = 0;
  journalStart: u64 = 0;
  journalBlocks: u64 = 0;
  dbStart: u64 = 0;
  dbBlocks: u64 = 0;
  dbBytes: u64 = 0;
  journalBytes: u64 = 0;
  /** The checksum extent; 0 blocks in version 1 (no checksums). */
  sumStart: u64 = 0;
  sumBlocks: u64 = 0;
  name: string = "";
}

/** Checksum blocks needed for a journal and database of `blocks` blocks together. */
export function sumBlocksFor(blocks: u64): u64 {
  return blocks / SUM_COVER + (blocks % SUM_COVER != 0 ? 1 : 0);
}

/**
 * A fresh layout for a disk of `blocks` (>= MIN_BLOCKS) blocks: the journal gets an
 * eighth, 16 blocks to 64 MiB; with checksums, the checksum extent takes 1/64 at the end.
 */
export function format(blocks: u64, name: string, checksums: bool = true): Superblock {
  const s = new Superblock();
  s.version = checksums ? VERSION : VERSION_PLAIN;
  s.generation = 1;
  s.diskBlocks = blocks;
  let j = blocks / 8;
  if (j < 16) j = 16;
  if (j > 16384) j = 16384;
  s.journalStart = SUPER_BLOCKS;
  s.journalBlocks = j;
  s.dbStart = SUPER_BLOCKS + j;
  // 64 S >= blocks - 2 makes 63 S cover the journal and database (blocks - 2 - S).
  const rest = blocks - SUPER_BLOCKS;
  const sums: u64 = checksums ? rest / 64 + (rest % 64 != 0 ? 1 : 0) : 0;
  s.dbBlocks = rest - j - sums;
  s.sumStart = s.dbStart + s.dbBlocks;
  s.sumBlocks = sums;
  s.name = name;
  return s;
}

/** Writes s into the 4 KiB page at p, checksum included. */
export function encode(s: Superblock, p: usize): void {
  memory.fill(p, 0, <usize>BLOCK);
  for (let i = 0; i < 16; i++) store<u8>(p + O_MAGIC + <usize>i, <u8>MAGIC.charCodeAt(i));
  store<u32>(p + O_VERSION, s.version);
  store<u32>(p + O_BLOCK, <u32>BLOCK);
  store<u64>(p + O_GENERATION, s.generation);
  store<u64>(p + O_DISK, s.diskBlocks);
  store<u64>(p + O_JSTART, s.journalStart);
  store<u64>(p + O_JBLOCKS, s.journalBlocks);
  store<u64>(p + O_DSTART, s.dbStart);
  store<u64>(p + O_DBLOCKS, s.dbBlocks);
  store<u64>(p + O_DBYTES, s.dbBytes);
  store<u64>(p + O_JBYTES, s.journalBytes);
  if (s.version >= VERSION) {
    store<u64>(p + O_SSTART, s.sumStart);
    store<u64>(p + O_SBLOCKS, s.sumBlocks);
  }
  const name = String.UTF8.encode(s.name, false);
  memory.copy(p + O_NAME, changetype<usize>(name), <usize>min(name.byteLength, NAME_MAX));
  store<u32>(p + O_CRC, crc32(p, O_CRC));
}

/** What one superblock copy holds. */
export enum Copy {
  Blank, // all zero: never written
  Foreign, // no magic: something else's data
  Corrupt, // magic, but the checksum fails
  Valid,
}

export function classify(p: usize): Copy {
  let zero = true;
  for (let i = 0; i < BLOCK; i += 8)
    if (load<u64>(p + <usize>i) != 0) {
      zero = false;
      break;
    }
  if (zero) return Copy.Blank;
  for (let i = 0; i < 16; i++) if (load<u8>(p + O_MAGIC + <usize>i) != <u8>MAGIC.charCodeAt(i)) return Copy.Foreign;
  return load<u32>(p + O_CRC) == crc32(p, O_CRC) ? Copy.Valid : Copy.Corrupt;
}

/** Version and block size of a copy with a valid checksum. */
export function version(p: usize): u32 {
  return load<u32>(p + O_VERSION);
}
export function blockSize(p: usize): u32 {
  return load<u32>(p + O_BLOCK);
}
export function generation(p: usize): u64 {
  return load<u64>(p + O_GENERATION);
}

/** True when generation a is newer than b, across a wrap of the 64-bit counter. */
export function newer(a: u64, b: u64): bool {
  return <i64>(a - b) > 0;
}

/** Decodes a Valid copy of version 1 or 2. */
export function decode(p: usize): Superblock {
  const s = new Superblock();
  s.version = load<u32>(p + O_VERSION);
  s.generation = load<u64>(p + O_GENERATION);
  s.diskBlocks = load<u64>(p + O_DISK);
  s.journalStart = load<u64>(p + O_JSTART);
  s.journalBlocks = load<u64>(p + O_JBLOCKS);
  s.dbStart = load<u64>(p + O_DSTART);
  s.dbBlocks = load<u64>(p + O_DBLOCKS);
  s.dbBytes = load<u64>(p + O_DBYTES);
  s.journalBytes = load<u64>(p + O_JBYTES);
  s.sumStart = load<u64>(p + O_SSTART);
  s.sumBlocks = load<u64>(p + O_SBLOCKS);
  let n = 0;
  while (n < NAME_MAX && load<u8>(p + O_NAME + <usize>n) != 0) n++;
  s.name = String.UTF8.decodeUnsafe(p + O_NAME, <usize>n);
  return s;
}

/**
 * Checks a decoded superblock against itself and the disk it came from (`blocks`
 * blocks now); "" when sound, else what is wrong. Values are from disk, hostile: every
 * sum and product is checked before it is formed, so nothing wraps.
 */
export function check(s: Superblock, blocks: u64): string {
  const b = <u64>BLOCK;
  if (s.version != VERSION && s.version != VERSION_PLAIN) return "version " + s.version.toString() + " is not one this runtime reads (1 or 2)";
  if (s.diskBlocks > blocks)
    return "the disk has " + blocks.toString() + " blocks but was formatted with " + s.diskBlocks.toString() + ": was it truncated?";
  const least = s.version == VERSION_PLAIN ? MIN_PLAIN : MIN_BLOCKS;
  if (s.diskBlocks < least) return "the superblock records a " + s.diskBlocks.toString() + "-block disk, below the minimum of " + least.toString();
  const n = s.diskBlocks;
  let e = inside("journal", s.journalStart, s.journalBlocks, n);
  if (e.length == 0) e = inside("database", s.dbStart, s.dbBlocks, n);
  if (e.length > 0) return e;
  // Disjoint from the superblocks and from each other.
  if (s.journalStart < SUPER_BLOCKS) return "the journal extent " + extent(s.journalStart, s.journalBlocks) + " overlaps the superblocks [0, +2)";
  if (s.dbStart < SUPER_BLOCKS) return "the database extent " + extent(s.dbStart, s.dbBlocks) + " overlaps the superblocks [0, +2)";
  if (overlap(s.journalStart, s.journalBlocks, s.dbStart, s.dbBlocks))
    return "the journal extent " + extent(s.journalStart, s.journalBlocks) + " overlaps the database extent " + extent(s.dbStart, s.dbBlocks);
  if (s.version == VERSION_PLAIN) {
    if (s.sumStart != 0 || s.sumBlocks != 0) return "a version-1 superblock records a checksum extent " + extent(s.sumStart, s.sumBlocks);
  } else {
    e = inside("checksum", s.sumStart, s.sumBlocks, n);
    if (e.length > 0) return e;
    if (s.sumStart < SUPER_BLOCKS) return "the checksum extent " + extent(s.sumStart, s.sumBlocks) + " overlaps the superblocks [0, +2)";
    if (overlap(s.sumStart, s.sumBlocks, s.journalStart, s.journalBlocks))
      return "the checksum extent " + extent(s.sumStart, s.sumBlocks) + " overlaps the journal extent " + extent(s.journalStart, s.journalBlocks);
    if (overlap(s.sumStart, s.sumBlocks, s.dbStart, s.dbBlocks))
      return "the checksum extent " + extent(s.sumStart, s.sumBlocks) + " overlaps the database extent " + extent(s.dbStart, s.dbBlocks);
    // Both extents lie inside the disk, disjoint, so their sum cannot wrap.
    const need = sumBlocksFor(s.journalBlocks + s.dbBlocks);
    if (s.sumBlocks < need)
      return "the checksum extent has " + s.sumBlocks.toString() + " blocks; the journal and database need " + need.toString();
  }
  // Sizes compared in whole blocks (a byte count of the extent could pass 2^64).
  if (ceilBlocks(s.dbBytes) > s.dbBlocks) return "the database size " + s.dbBytes.toString() + " exceeds its extent of " + s.dbBlocks.toString() + " blocks";
  if (ceilBlocks(s.journalBytes) > s.journalBlocks)
    return "the journal size " + s.journalBytes.toString() + " exceeds its extent of " + s.journalBlocks.toString() + " blocks";
  return "";
}

/** "" when [start, +count) is non-empty and inside a disk of `disk` blocks. */
function inside(what: string, start: u64, count: u64, disk: u64): string {
  if (count == 0) return "the " + what + " extent " + extent(start, count) + " is empty";
  if (start >= disk || count > disk - start) return "the " + what + " extent " + extent(start, count) + " lies outside the " + disk.toString() + "-block disk";
  return "";
}

/** Whether two extents, each already inside the disk, share a block. */
function overlap(a: u64, n: u64, b: u64, m: u64): bool {
  return a < b + m && b < a + n;
}

function ceilBlocks(bytes: u64): u64 {
  const b = <u64>BLOCK;
  return bytes / b + (bytes % b != 0 ? 1 : 0);
}

function extent(start: u64, n: u64): string {
  return "[" + start.toString() + ", +" + n.toString() + ")";
}

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table built on first use.
let table: StaticArray<u32> | null = null;

export function crc32(p: usize, len: i32): u32 {
  let t = table;
  if (t == null) {
    t = new StaticArray<u32>(256);
    for (let i = 0; i < 256; i++) {
      let c = <u32>i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[i] = c;
    }
    table = t;
  }
  let c: u32 = 0xffffffff;
  for (let i = 0; i < len; i++) c = unchecked(t[(c ^ load<u8>(p + <usize>i)) & 0xff]) ^ (c >>> 8);
  return c ^ 0xffffffff;
}
