// Block checksums for the SQLite VFS (layout version 2): a CRC-32C for every
// 512-byte sector ("unit") of the journal and database extents, kept in the checksum
// extent, so a flipped bit on disk becomes an error naming the block, never data.
//
// Why a pair per unit: power loss tears a multi-sector write at sector granularity
// and a write cache may keep any subset of unflushed writes, so after a cut a sector
// holds either its old or its new content. Each entry holds two CRCs, (new, current);
// before a live unit is rewritten its entry is written as (new, current) and made
// durable (write, then flush), and only then is the data written. After any cut the
// unit matches one of the two. Writing (new, current) needs the current CRC exactly:
// it is known after our own write was flushed, or after a verified read; otherwise
// (after a mount, say) the block is read once first.
//
// Units past the durable size of their file ("dead": the superblock says SQLite never
// reads them after a cut) need no such care: their entries go out with the data, with
// no flush, and the next sync's barrier makes both durable before the size that makes
// them live. That is every journal append and every page that grows the database.
//
// Checksum extent: block i covers 63 journal/database blocks (504 units); each of its
// eight 512-byte sectors holds 63 entries (u32 first, u32 second), then u32 0 and the
// sector's own CRC-32C (of its disk sector number, then bytes 0 … 507). A sector of
// zeros is "never written" (entries (0, 0), matching nothing). Unit u of the
// journal+database (journal first) is entry u % 63 of sector u / 63. Each CRC of a
// unit covers its disk sector number (u64, little-endian) and then its 512 bytes, so a
// block written or read at the wrong place fails too.
import * as L from "./layout";
import * as sched from "../sched";
import { BlockOp, BufferPool, Device } from "../block";

const UNIT: u64 = 512;
const UNITS: u64 = 8; // units per 4 KiB block
const PER_SECTOR: u64 = 63;
const PER_BLOCK: u64 = PER_SECTOR * UNITS; // 504
/** Checksum blocks kept in memory (4 KiB each); blocks with units in flux are never dropped. */
export const CACHE_BLOCKS: i32 = 128;

// What the runtime knows of a unit's content on disk.
const UNKNOWN: u8 = 0; // one of the pair (read the block to know which)
const KNOWN: u8 = 1; // the first CRC of the pair
const INFLUX: u8 = 2; // written, not yet flushed: either; the first once a flush completes
const FAILED: u8 = 3; // a write of it failed: unknown, and not to be read before a flush
const MISMATCH: u8 = 4; // read before a rewrite, it matched neither CRC: damaged, to be overwritten

/** Statistics, for benchmarks and tests. */
export let tableReads: i64 = 0;
export let tableWrites: i64 = 0;
export let tableFlushes: i64 = 0;
export let preReads: i64 = 0;

class TableBlock {
  state: StaticArray<u8> = new StaticArray<u8>(<i32>PER_BLOCK);
  /** Bit s: sector s is damaged (bad CRC); bit s of dirty: sector s changed in memory. */
  damaged: u32 = 0;
  dirty: u32 = 0;
  influx: bool = false;
  used: i64 = 0;
  constructor(
    public index: u64,
    public page: usize,
  ) {}
}

/** The checksums of one mounted disk. */
export class Sums {
  private cache: Map<u64, TableBlock> = new Map<u64, TableBlock>();
  private pool: BufferPool = new BufferPool(0);
  private tick: i64 = 0;
  /** Bytes of each file that may be live on disk: the most any superblock copy could say. */
  liveJournal: u64;
  liveDb: u64;

  constructor(
    public dev: Device,
    public sb: L.Superblock,
    /** Device sectors per 4 KiB block. */
    public spb: u64,
  ) {
    this.liveJournal = this.lastJournal = sb.journalBytes;
    this.liveDb = this.lastDb = sb.dbBytes;
  }

  /** Unit index of the first unit of block `blk` of the file at disk block `start`. */
  private unitOf(start: u64, blk: u64): u64 {
    return (start == this.sb.journalStart ? 0 : this.sb.journalBlocks * UNITS) + blk * UNITS;
  }

  private live(start: u64): u64 {
    return start == this.sb.journalStart ? this.liveJournal : this.liveDb;
  }

  /** The checksum block holding unit u, read from disk if not cached; null on error (in err). */
  private err: string = "";
  private table(u: u64): TableBlock | null {
    const i = u / PER_BLOCK;
    if (this.cache.has(i)) {
      const t = this.cache.get(i);
      t.used = ++this.tick;
      return t;
    }
    this.evict();
    const page = this.pool.get();
    if (page == 0) {
      this.err = "out of memory for a checksum block";
      return null;
    }
    tableReads++;
    const op = this.dev.read((this.sb.sumStart + i) * this.spb, [page]);
    const e = settle([op]);
    if (e.length > 0) {
      if (!op.shared) this.pool.put(page);
      this.err = "reading checksum block " + i.toString() + " (disk block " + (this.sb.sumStart + i).toString() + "): " + e;
      return null;
    }
    const t = new TableBlock(i, page);
    for (let s: u64 = 0; s < UNITS; s++) {
      const p = page + <usize>(s * UNIT);
      if (!zero(p) && load<u32>(p + 508) != sectorCrc(p, (this.sb.sumStart + i) * UNITS + s)) t.damaged |= 1 << <u32>s;
    }
    t.used = ++this.tick;
    this.cache.set(i, t);
    return t;
  }

  // Drops the least recently used clean block without units in flux when the cache is full.
  private evict(): void {
    if (this.cache.size < CACHE_BLOCKS) return;
    const all = this.cache.values();
    let victim: TableBlock | null = null;
    for (let k = 0; k < all.length; k++) {
      const t = all[k];
      if (t.influx || t.dirty != 0) continue;
      if (victim == null || t.used < victim!.used) victim = t;
    }
    if (victim == null) return; // every block is in use: grow past the bound until the next flush
    this.cache.delete(victim!.index);
    this.pool.put(victim!.page);
  }

  private damage(t: TableBlock, u: u64): bool {
    return (t.damaged & (1 << <u32>((u % PER_BLOCK) / PER_SECTOR))) != 0;
  }

  private where(start: u64, blk: u64): string {
    return "block " + blk.toString() + " (disk block " + (start + blk).toString() + ")";
  }

  private tableWhere(t: TableBlock): string {
    return "checksum block " + t.index.toString() + " (disk block " + (this.sb.sumStart + t.index).toString() + ")";
  }

  /**
   * Checks block `blk` of the file at disk block `start`, just read into page: every
   * unit within the file's `size` bytes must match its pair. "" when sound.
   */
  verify(start: u64, size: u64, blk: u64, page: usize): string {
    const u0 = this.unitOf(start, blk);
    const t = this.table(u0);
    if (t == null) return this.where(start, blk) + ": " + this.err;
    for (let k: u64 = 0; k < UNITS; k++) {
      if ((blk * UNITS + k) * UNIT >= size) break;
      const u = u0 + k;
      if (this.damage(t!, u))
        return this.where(start, blk) + ": its " + this.tableWhere(t!) + " is damaged — the disk was damaged; restore from a backup";
      const e = entry(t!, u);
      const c = unitCrc(page + <usize>(k * UNIT), (start + blk) * UNITS + k);
      const a = load<u32>(e);
      const b = load<u32>(e + 4);
      if (c != a && c != b)
        return this.where(start, blk) + ": checksum mismatch (sector " + k.toString() + ") — the disk was damaged; restore from a backup";
      const si = <i32>(u % PER_BLOCK);
      if (unchecked(t!.state[si]) == UNKNOWN) {
        // Nothing of ours is unflushed here, so what we read is what the disk holds.
        if (c != a) swap(e);
        unchecked((t!.state[si] = KNOWN));
      }
    }
    return "";
  }

  /**
   * Before the data write of `blocks` (sorted block numbers of the file at disk block
   * `start`, contents in `pages`): puts each unit's (new, current) entry on disk, durably
   * when the unit is live. "" when the data may now be written.
   */
  prepare(start: u64, blocks: Array<u64>, pages: Array<usize>): string {
    const live = this.live(start);
    // A live unit rewritten while an earlier write of it is unflushed: flush first.
    let unsettled = false;
    for (let i = 0; i < blocks.length && !unsettled; i++) {
      const u0 = this.unitOf(start, blocks[i]);
      const t = this.table(u0);
      if (t == null) return this.where(start, blocks[i]) + ": " + this.err;
      for (let k: u64 = 0; k < UNITS; k++) {
        const st = unchecked(t!.state[<i32>((u0 + k) % PER_BLOCK)]);
        if ((st == INFLUX || st == FAILED) && (blocks[i] * UNITS + k) * UNIT < live) unsettled = true;
      }
    }
    if (unsettled) {
      const e = this.flush();
      if (e.length > 0) return e;
    }
    // Live units whose current content is unknown: read their blocks once.
    const unknown = new Array<u64>();
    for (let i = 0; i < blocks.length; i++) {
      const blk = blocks[i];
      const u0 = this.unitOf(start, blk);
      const t = this.table(u0)!;
      for (let k: u64 = 0; k < UNITS; k++) {
        const u = u0 + k;
        if ((blk * UNITS + k) * UNIT >= live) break;
        const e = entry(t, u);
        const st = unchecked(t.state[<i32>(u % PER_BLOCK)]);
        if (st != KNOWN && st != MISMATCH && !this.damage(t, u) && load<u32>(e) != load<u32>(e + 4)) {
          unknown.push(blk);
          break;
        }
      }
    }
    if (unknown.length > 0) {
      const e = this.learn(start, unknown);
      if (e.length > 0) return e;
    }
    let durably = false;
    for (let i = 0; i < blocks.length; i++) {
      const blk = blocks[i];
      const u0 = this.unitOf(start, blk);
      const t = this.table(u0)!;
      for (let k: u64 = 0; k < UNITS; k++) {
        const u = u0 + k;
        const si = <i32>(u % PER_BLOCK);
        const e = entry(t, u);
        const y = unitCrc(pages[i] + <usize>(k * UNIT), (start + blk) * UNITS + k);
        const isLive = (blk * UNITS + k) * UNIT < live;
        if (this.damage(t, u)) {
          if (isLive) {
            this.failed(start, blocks); // entries changed above are not on disk: learn again
            return this.where(start, blk) + ": its " + this.tableWhere(t) + " is damaged — the disk was damaged; restore from a backup";
          }
          // Nothing live depends on the sector: start it afresh.
          memory.fill(t.page + <usize>((u % PER_BLOCK) / PER_SECTOR * UNIT), 0, <usize>UNIT);
          t.damaged &= ~(1 << <u32>((u % PER_BLOCK) / PER_SECTOR));
        }
        const a = load<u32>(e);
        const b = load<u32>(e + 4);
        const st = unchecked(t.state[si]);
        if (!isLive) {
          if (a != y || b != y) set(t, u, y, y);
          unchecked((t.state[si] = INFLUX));
        } else {
          // KNOWN, or a pair of one CRC: the disk holds a. MISMATCH: it holds neither
          // (damaged) and is overwritten. Anything else was learnt above.
          if (st != KNOWN && st != MISMATCH && a != b) {
            this.failed(start, blocks);
            return this.where(start, blk) + ": its checksum state is unsettled before a rewrite (a bug in blocksum.ts): not writing it";
          }
          const cur = st == MISMATCH ? y : a;
          if (cur == y) {
            if (st != KNOWN) {
              if (a != y || b != y) {
                set(t, u, y, y);
                durably = true;
              }
              unchecked((t.state[si] = INFLUX));
              t.influx = true;
            }
            continue;
          }
          set(t, u, y, cur);
          unchecked((t.state[si] = INFLUX));
          durably = true;
        }
        t.influx = true;
      }
    }
    // The changed checksum sectors, as one request per checksum block.
    const ops = new Array<BlockOp>();
    const sent = new Array<TableBlock>();
    const all = this.cache.values();
    for (let k = 0; k < all.length; k++) {
      const t = all[k];
      if (t.dirty == 0) continue;
      // Every sector's CRC afresh (verify() and learn() may have swapped pairs in memory),
      // except damaged ones, which stay damaged, and never-written ones, which stay zero.
      for (let s: u64 = 0; s < UNITS; s++) {
        const p = t.page + <usize>(s * UNIT);
        if ((t.damaged & (1 << <u32>s)) != 0 || zero(p)) continue;
        store<u32>(p + 504, 0);
        store<u32>(p + 508, sectorCrc(p, (this.sb.sumStart + t.index) * UNITS + s));
      }
      ops.push(this.dev.write((this.sb.sumStart + t.index) * this.spb, [t.page]));
      sent.push(t);
      tableWrites++;
    }
    let e = settle(ops);
    for (let k = 0; k < sent.length; k++) {
      if (ops[k].failed && ops[k].shared) this.cache.delete(sent[k].index); // the backend keeps the page: never reuse it
      else if (!ops[k].failed) sent[k].dirty = 0;
    }
    if (e.length > 0) e = "writing the checksums: " + e;
    else if (durably) e = this.flush();
    if (e.length > 0) {
      // The data stays unwritten; the checksum extent holds the old pair or the new one
      // (both name the current content), but which CRC is current must be learnt again.
      this.failed(start, blocks);
      return e;
    }
    return "";
  }

  /** The data write of `blocks` failed: what the disk holds there is unknown until the next flush. */
  failed(start: u64, blocks: Array<u64>): void {
    for (let i = 0; i < blocks.length; i++) {
      const u0 = this.unitOf(start, blocks[i]);
      const i0 = u0 / PER_BLOCK;
      if (!this.cache.has(i0)) continue;
      const t = this.cache.get(i0);
      for (let k: u64 = 0; k < UNITS; k++) unchecked((t.state[<i32>((u0 + k) % PER_BLOCK)] = FAILED));
      t.influx = true; // so that the next flush turns FAILED into UNKNOWN
    }
  }

  /** A flush or barrier completed: every write issued before it is durable. */
  durable(): void {
    const all = this.cache.values();
    for (let k = 0; k < all.length; k++) {
      const t = all[k];
      if (!t.influx) continue;
      for (let i = 0; i < <i32>PER_BLOCK; i++) {
        const s = unchecked(t.state[i]);
        if (s == INFLUX) unchecked((t.state[i] = KNOWN));
        else if (s == FAILED) unchecked((t.state[i] = UNKNOWN));
      }
      t.influx = false;
    }
    this.evict();
  }

  /** A superblock recording these sizes is about to be written (it may land or not). */
  recording(dbBytes: u64, journalBytes: u64): void {
    if (dbBytes > this.liveDb) this.liveDb = dbBytes;
    if (journalBytes > this.liveJournal) this.liveJournal = journalBytes;
  }

  /**
   * That superblock write completed, ordered after every earlier write (a barrier's
   * pre-flush, or flush + write + flush), which are durable now, as is the superblock
   * before it. `durable`: this one is durable too (flushed after it); otherwise it may
   * still be in the disk's cache, and a unit stays live while either copy says so.
   */
  recorded(dbBytes: u64, journalBytes: u64, durable: bool = false): void {
    this.liveDb = durable ? dbBytes : max(dbBytes, this.lastDb);
    this.liveJournal = durable ? journalBytes : max(journalBytes, this.lastJournal);
    this.lastDb = dbBytes;
    this.lastJournal = journalBytes;
    this.durable();
  }
  private lastDb: u64 = 0;
  private lastJournal: u64 = 0;

  private flush(): string {
    tableFlushes++;
    const op = this.dev.flush();
    const e = settle([op]);
    if (e.length > 0) return "flushing the checksums: " + e;
    this.durable();
    return "";
  }

  // Reads blocks whose live units are UNKNOWN and learns which CRC of each pair the disk holds.
  private learn(start: u64, blocks: Array<u64>): string {
    const page = this.pool.get();
    if (page == 0) return "out of memory for an I/O page";
    for (let i = 0; i < blocks.length; i++) {
      preReads++;
      const op = this.dev.read((start + blocks[i]) * this.spb, [page]);
      const e = settle([op]);
      if (e.length > 0) {
        if (!op.shared) this.pool.put(page);
        return this.where(start, blocks[i]) + ": reading it before a rewrite: " + e;
      }
      const u0 = this.unitOf(start, blocks[i]);
      const t = this.table(u0)!;
      for (let k: u64 = 0; k < UNITS; k++) {
        const u = u0 + k;
        const si = <i32>(u % PER_BLOCK);
        const st = unchecked(t.state[si]);
        if (st == KNOWN || st == MISMATCH || this.damage(t, u)) continue;
        const e2 = entry(t, u);
        const c = unitCrc(page + <usize>(k * UNIT), (start + blocks[i]) * UNITS + k);
        if (c == load<u32>(e2 + 4)) swap(e2);
        // Neither: the sector is damaged; prepare() overwrites it.
        unchecked((t.state[si] = c == load<u32>(e2) ? KNOWN : MISMATCH));
      }
    }
    this.pool.put(page);
    return "";
  }
}

function entry(t: TableBlock, u: u64): usize {
  const r = u % PER_BLOCK;
  return t.page + <usize>((r / PER_SECTOR) * UNIT + (r % PER_SECTOR) * 8);
}

function set(t: TableBlock, u: u64, first: u32, second: u32): void {
  const e = entry(t, u);
  store<u32>(e, first);
  store<u32>(e + 4, second);
  t.dirty |= 1 << <u32>((u % PER_BLOCK) / PER_SECTOR);
}

function swap(e: usize): void {
  const a = load<u32>(e);
  store<u32>(e, load<u32>(e + 4));
  store<u32>(e + 4, a);
}

function zero(p: usize): bool {
  for (let i: usize = 0; i < <usize>UNIT; i += 8) if (load<u64>(p + i) != 0) return false;
  return true;
}

/** Waits until every op has settled (none left in flight); "" or the first error. */
function settle(ops: Array<BlockOp>): string {
  if (ops.length == 0) return "";
  sched.wait(new sched.AllSettled(changetype<Array<sched.Future>>(ops)));
  for (let i = 0; i < ops.length; i++) if (ops[i].failed) return ops[i].error;
  return "";
}

/** CRC-32C of a unit: its disk sector number (u64 LE), then its 512 bytes. */
export function unitCrc(p: usize, sector: u64): u32 {
  return crc32cFinish(crc32cUpdate(crc32cU64(0xffffffff, sector), p, <i32>UNIT));
}

/** CRC-32C of a checksum sector: its disk sector number, then bytes 0 … 507. */
function sectorCrc(p: usize, sector: u64): u32 {
  return crc32cFinish(crc32cUpdate(crc32cU64(0xffffffff, sector), p, 508));
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing by 8: eight tables
// of 256 entries, built on first use.
let T: StaticArray<u32> | null = null;

function tables(): StaticArray<u32> {
  let t = T;
  if (t != null) return t;
  t = new StaticArray<u32>(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = <u32>i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++)
    for (let s = 1; s < 8; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
  T = t;
  return t;
}

function crc32cU64(c: u32, v: u64): u32 {
  const t = tables();
  for (let i = 0; i < 8; i++) {
    c = unchecked(t[(c ^ <u32>(v & 0xff)) & 0xff]) ^ (c >>> 8);
    v >>= 8;
  }
  return c;
}

export function crc32cUpdate(c: u32, p: usize, len: i32): u32 {
  const t = tables();
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const lo = load<u32>(p + <usize>i) ^ c;
    const hi = load<u32>(p + <usize>i + 4);
    c =
      unchecked(t[7 * 256 + (lo & 0xff)]) ^
      unchecked(t[6 * 256 + ((lo >>> 8) & 0xff)]) ^
      unchecked(t[5 * 256 + ((lo >>> 16) & 0xff)]) ^
      unchecked(t[4 * 256 + (lo >>> 24)]) ^
      unchecked(t[3 * 256 + (hi & 0xff)]) ^
      unchecked(t[2 * 256 + ((hi >>> 8) & 0xff)]) ^
      unchecked(t[1 * 256 + ((hi >>> 16) & 0xff)]) ^
      unchecked(t[hi >>> 24]);
  }
  for (; i < len; i++) c = unchecked(t[(c ^ load<u8>(p + <usize>i)) & 0xff]) ^ (c >>> 8);
  return c;
}

function crc32cFinish(c: u32): u32 {
  return c ^ 0xffffffff;
}

/** CRC-32C of len bytes at p (standard: initial and final XOR 0xFFFFFFFF). */
export function crc32c(p: usize, len: i32): u32 {
  return crc32cFinish(crc32cUpdate(0xffffffff, p, len));
}
