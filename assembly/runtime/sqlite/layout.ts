// The on-disk layout of a Morgana SQLite disk: no filesystem, two extents and a
// superblock kept in two copies. Pure data: no I/O here (vfs.ts does the I/O).
//
//   block (4 KiB)
//   0            superblock copy A  ┐ updated alternately; the valid copy with the
//   1            superblock copy B  ┘ higher generation is current (a torn update
//                                     loses only the copy being written)
//   2 … 2+J−1    rollback journal extent (J blocks)
//   2+J … end    database extent
//
// Superblock, little-endian:
//   0  u8[16] magic "MorganaSQLiteVFS"     80  u64 journal bytes (size as of its last sync)
//   16 u32    version (1)                  88  u8[64] database name, NUL-padded
//   20 u32    block size (4096)            152 … 4091 zero
//   24 u64    generation                   4092 u32 CRC-32 (IEEE) of bytes 0 … 4091
//   32 u64    disk blocks when formatted
//   40 u64    journal start  48 u64 journal blocks
//   56 u64    database start 64 u64 database blocks
//   72 u64    database bytes (size as of its last sync)

export const BLOCK: i32 = 4096;
export const MAGIC = "MorganaSQLiteVFS";
export const VERSION: u32 = 1;
export const SUPER_BLOCKS: u64 = 2;
export const NAME_MAX: i32 = 63;
/** Smallest disk worth formatting: superblocks + 16 journal blocks + 32 database blocks. */
export const MIN_BLOCKS: u64 = 50;

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
const O_CRC = 4092;

export class Superblock {
  generation: u64 = 0;
  diskBlocks: u64 = 0;
  journalStart: u64 = 0;
  journalBlocks: u64 = 0;
  dbStart: u64 = 0;
  dbBlocks: u64 = 0;
  dbBytes: u64 = 0;
  journalBytes: u64 = 0;
  name: string = "";
}

/** A fresh layout for a disk of `blocks` blocks: the journal gets an eighth, 16 blocks to 64 MiB. */
export function format(blocks: u64, name: string): Superblock {
  const s = new Superblock();
  s.generation = 1;
  s.diskBlocks = blocks;
  let j = blocks / 8;
  if (j < 16) j = 16;
  if (j > 16384) j = 16384;
  s.journalStart = SUPER_BLOCKS;
  s.journalBlocks = j;
  s.dbStart = SUPER_BLOCKS + j;
  s.dbBlocks = blocks - SUPER_BLOCKS - j;
  return s;
}

/** Writes s into the 4 KiB page at p, checksum included. */
export function encode(s: Superblock, p: usize): void {
  memory.fill(p, 0, <usize>BLOCK);
  for (let i = 0; i < 16; i++) store<u8>(p + O_MAGIC + <usize>i, <u8>MAGIC.charCodeAt(i));
  store<u32>(p + O_VERSION, VERSION);
  store<u32>(p + O_BLOCK, <u32>BLOCK);
  store<u64>(p + O_GENERATION, s.generation);
  store<u64>(p + O_DISK, s.diskBlocks);
  store<u64>(p + O_JSTART, s.journalStart);
  store<u64>(p + O_JBLOCKS, s.journalBlocks);
  store<u64>(p + O_DSTART, s.dbStart);
  store<u64>(p + O_DBLOCKS, s.dbBlocks);
  store<u64>(p + O_DBYTES, s.dbBytes);
  store<u64>(p + O_JBYTES, s.journalBytes);
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

/** Decodes a Valid copy of the current version. */
export function decode(p: usize): Superblock {
  const s = new Superblock();
  s.generation = load<u64>(p + O_GENERATION);
  s.diskBlocks = load<u64>(p + O_DISK);
  s.journalStart = load<u64>(p + O_JSTART);
  s.journalBlocks = load<u64>(p + O_JBLOCKS);
  s.dbStart = load<u64>(p + O_DSTART);
  s.dbBlocks = load<u64>(p + O_DBLOCKS);
  s.dbBytes = load<u64>(p + O_DBYTES);
  s.journalBytes = load<u64>(p + O_JBYTES);
  let n = 0;
  while (n < NAME_MAX && load<u8>(p + O_NAME + <usize>n) != 0) n++;
  s.name = String.UTF8.decodeUnsafe(p + O_NAME, <usize>n);
  return s;
}

/**
 * Checks a decoded superblock against itself and the disk it came from (`blocks`
 * blocks now); "" when sound, else what is wrong. Values are from disk: hostile.
 */
export function check(s: Superblock, blocks: u64): string {
  const b = <u64>BLOCK;
  if (s.diskBlocks > blocks)
    return "the disk has " + blocks.toString() + " blocks but was formatted with " + s.diskBlocks.toString() + ": was it truncated?";
  if (s.diskBlocks < MIN_BLOCKS) return "the superblock records a " + s.diskBlocks.toString() + "-block disk, below the minimum of " + MIN_BLOCKS.toString();
  if (s.journalStart != SUPER_BLOCKS || s.journalBlocks == 0 || s.journalBlocks > s.diskBlocks)
    return "the journal extent " + extent(s.journalStart, s.journalBlocks) + " is not where the layout puts it";
  if (s.dbStart != s.journalStart + s.journalBlocks || s.dbBlocks == 0 || s.dbBlocks > s.diskBlocks - s.dbStart)
    return "the database extent " + extent(s.dbStart, s.dbBlocks) + " does not fit a " + s.diskBlocks.toString() + "-block disk after the journal";
  if (s.dbBytes > s.dbBlocks * b) return "the database size " + s.dbBytes.toString() + " exceeds its extent of " + (s.dbBlocks * b).toString() + " bytes";
  if (s.journalBytes > s.journalBlocks * b)
    return "the journal size " + s.journalBytes.toString() + " exceeds its extent of " + (s.journalBlocks * b).toString() + " bytes";
  return "";
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
