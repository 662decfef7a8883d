// The SQLite VFS on a raw virtual disk (Mirage paper §3.3): no filesystem, one
// database and its rollback journal in two extents (layout.ts draws them).
// sqlite/glue.c forwards SQLite's sqlite3_vfs / sqlite3_io_methods calls here.
//
// What it does:
//   - 4 KiB page-aligned I/O only: partial blocks are read, modified and written whole.
//   - Writes go to a per-file cache of dirty blocks; contiguous dirty blocks leave as
//     scatter-gather requests of up to the device's pages-per-request, all in flight
//     together. A write that is not a sync never flushes (journal appends included).
//   - xSync writes the file's dirty blocks, waits until every one has settled, then makes
//     them durable before it returns. When the file's size is what the last superblock
//     recorded (a commit's usual case) that is one flush. When it changed, the superblock
//     recording the new size goes out as a WRITE BARRIER followed by a flush: the
//     barrier's pre-flush makes every earlier write durable before the superblock, and
//     the flush makes the superblock itself durable — Linux's xen-blkback turns a barrier
//     into drain + REQ_PREFLUSH + write (blkback.c), so the barrier write alone survives
//     no power cut. Without barrier support: flush, superblock write, flush. So a journal
//     sync makes the journal durable before any later database write, and a database
//     sync the database before the journal is reset.
//   - A transaction commits at a journal sync: SQLite in exclusive locking mode ends
//     each one by zeroing the journal header and syncing the journal (pager.c
//     zeroJournalHdr), and without it by deleting the journal — here a superblock update
//     with journal size 0, durable before xDelete returns. Either way, when COMMIT returns
//     the transaction survives power loss.
//   - A batch of requests is finished only when every request in it has settled
//     (sched.AllSettled): an error is reported, a page reused and a block rewritten only
//     then, and pages a failed device keeps mapped are never reused.
//   - Sizes are what the last sync recorded: after power loss the journal is hot
//     exactly when its last sync said so, and SQLite rolls it back.
//
// What it leaves out, and the SQLite settings that make that safe:
//   - Locking: one connection in one unikernel (SQLITE_THREADSAFE=0, locking_mode
//     EXCLUSIVE compiled in); xLock always succeeds.
//   - WAL and shared memory (SQLITE_OMIT_WAL): rollback journal only, journal_mode=DELETE.
//   - Temporary files (SQLITE_TEMP_STORE=3: temp tables and statement journals in memory)
//     and super-journals (one database per disk: ATTACH of a second file is refused).
//   - Directories, mmap (SQLITE_MAX_MMAP_SIZE=0), dlopen (SQLITE_OMIT_LOAD_EXTENSION).
//   - Device characteristics: only POWERSAFE_OVERWRITE (a block rewrite leaves bytes
//     outside the written range as they were: sectors are atomic and unchanged bytes are
//     rewritten identical), so SQLite keeps its full sync sequence (synchronous=FULL).
//
// Everything read from the disk is hostile: superblocks are checksummed and
// range-checked (layout.check), a foreign disk is refused and never overwritten, every
// journal and database sector read is checked against its CRC-32C (blocksum.ts; layout
// version 2), and SQLite itself checks database pages (PRAGMA cell_size_check, defensive mode).
import * as c from "./sqlite3";
import * as L from "./layout";
import * as abi from "../abi";
import * as time from "../time";
import * as sched from "../sched";
import { BlockOp, BufferPool, Device } from "../block";
import { Sums } from "./blocksum";

const BLOCK = <u64>L.BLOCK;
/** Dirty blocks a file may hold before they are written back (not flushed): 1 MiB. */
const DIRTY_LIMIT: i32 = 256;

const FID_DB: i32 = 1;
const FID_JOURNAL: i32 = 2;

class File {
  /** Bytes SQLite sees; durable is what the superblock last recorded. */
  size: u64 = 0;
  durable: u64 = 0;
  open: bool = false;
  dirty: Map<u64, usize> = new Map<u64, usize>();
  constructor(
    public what: string,
    public start: u64,
    public blocks: u64,
  ) {}
}

class Mount {
  /** The copy (0 or 1) the next superblock update goes to: not the current one. */
  nextSlot: u64;
  db: File;
  journal: File;
  /** Disk sectors per 4 KiB block. */
  spb: u64;
  maxPages: i32;
  pool: BufferPool = new BufferPool(16);
  /** The sizes the last completed (durable) superblock update recorded. */
  recDb: u64;
  recJournal: u64;
  /** Block checksums (layout version 2); null on a version-1 disk. */
  sums: Sums | null = null;
  constructor(
    public dev: Device,
    public sb: L.Superblock,
    slot: u64,
  ) {
    const db = new File("database " + sb.name, sb.dbStart, sb.dbBlocks);
    db.size = db.durable = sb.dbBytes;
    const j = new File("journal of " + sb.name, sb.journalStart, sb.journalBlocks);
    j.size = j.durable = sb.journalBytes;
    this.db = db;
    this.journal = j;
    this.recDb = sb.dbBytes;
    this.recJournal = sb.journalBytes;
    this.nextSlot = slot ^ 1;
    this.spb = BLOCK / <u64>dev.info().sectorSize;
    this.maxPages = min(dev.info().maxPages, 32);
    if (sb.version >= L.VERSION) this.sums = new Sums(dev, sb, this.spb);
  }
}

@lazy let mounted: Mount | null = null;
/** Format blank disks with block checksums (layout version 2); false: version 1, for benchmarks. */
export let formatChecksums: bool = true;
export function setFormatChecksums(on: bool): void {
  formatChecksums = on;
}
let lastError = "";

/** The disk-level reason for the last failed call ("" if none), cleared by reading. */
export function takeLastError(): string {
  const e = lastError;
  lastError = "";
  return e;
}

/** Statistics, for benchmarks: requests issued by the VFS. */
export let reads: i64 = 0;
export let writes: i64 = 0;
export let barriers: i64 = 0;
export let flushes: i64 = 0;

function fail(rc: i32, why: string): i32 {
  lastError = why;
  return rc;
}

/** Pages a failed device kept mapped (op.shared): never given back to a pool, never reused. */
const lost = new Set<usize>();

/**
 * Waits until every request of a batch has settled, whatever the others did
 * (sched.AllSettled, not join): only then may the caller report an error, reuse their
 * pages or let SQLite rewrite their blocks — a request still in flight could otherwise
 * land after a newer write of its block. "" when all succeeded, else the first error.
 */
function finish(ops: Array<BlockOp>): string {
  if (ops.length == 0) return "";
  sched.wait(new sched.AllSettled(changetype<Array<sched.Future>>(ops)));
  let e = "";
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.shared) for (let k = 0; k < op.pages.length; k++) lost.add(op.pages[k]);
    if (e.length == 0 && !op.ok) e = op.error.length > 0 ? op.error : "a block request was cancelled";
  }
  return e;
}

/** Returns a page to a pool, unless a failed device kept it (see finish). */
function give(pool: BufferPool, page: usize): void {
  if (!lost.has(page)) pool.put(page);
}

function giveAll(pool: BufferPool, pages: Array<usize>): void {
  for (let k = 0; k < pages.length; k++) give(pool, pages[k]);
}

/**
 * Attaches the database `name` on dev: reads the superblocks, formats a blank disk,
 * refuses a foreign, corrupt, truncated or other-version one. "" when mounted.
 */
export function mount(dev: Device, name: string): string {
  if (mounted != null) {
    if (mounted!.dev == dev && mounted!.sb.name == name) return "";
    return "sqlite: one database per unikernel: " + mounted!.sb.name + " is already open";
  }
  const info = dev.info();
  const where = "vbd " + info.devid + ": ";
  if (name.length == 0 || String.UTF8.byteLength(name) > L.NAME_MAX || name.includes("/"))
    return where + "database name \"" + name + "\" must be 1 to " + L.NAME_MAX.toString() + " bytes without '/'";
  if (info.sectorSize == 0 || (L.BLOCK % <i32>info.sectorSize) != 0)
    return where + "sector size " + info.sectorSize.toString() + " does not divide the 4 KiB block";
  const blocks = info.sectors / (BLOCK / <u64>info.sectorSize);
  const spb = BLOCK / <u64>info.sectorSize;
  if (blocks < L.SUPER_BLOCKS)
    return where + "the disk has " + blocks.toString() + " blocks of 4 KiB; a database needs at least " + L.MIN_BLOCKS.toString();
  const pool = new BufferPool(2);
  const pages = pool.take(2);
  if (pages.length < 2) return where + "out of memory for I/O pages";
  const e = finish([dev.read(0, pages, <u32>(2 * spb))]);
  if (e.length > 0) return where + "reading the superblock: " + e;
  const kinds = [L.classify(pages[0]), L.classify(pages[1])];
  let best = -1;
  let bestGen: u64 = 0;
  let corrupt = false;
  for (let i = 0; i < 2; i++) {
    const k = kinds[i];
    if (k == L.Copy.Corrupt) corrupt = true;
    if (k != L.Copy.Valid) continue;
    const p = pages[i];
    if (L.version(p) != L.VERSION && L.version(p) != L.VERSION_PLAIN)
      return where + "the superblock is version " + L.version(p).toString() + "; this runtime reads versions 1 and 2 (a disk from a newer Morgana?)";
    if (L.blockSize(p) != <u32>L.BLOCK) return where + "the superblock says " + L.blockSize(p).toString() + "-byte blocks; this runtime uses 4096";
    const g = L.generation(p);
    // Updates alternate copies with generation + 1: two copies of one generation are not ours.
    if (best >= 0 && g == bestGen)
      return where + "the superblock is inconsistent: both copies claim generation " + g.toString() + "; restore the disk from a backup";
    if (best < 0 || L.newer(g, bestGen)) {
      best = i;
      bestGen = g;
    }
  }
  let sb: L.Superblock;
  let slot: u64 = 0;
  if (best < 0) {
    if (kinds[0] == L.Copy.Blank && kinds[1] == L.Copy.Blank) {
      if (info.readOnly) return where + "the disk is blank and read-only: nothing to open";
      const least = formatChecksums ? L.MIN_BLOCKS : L.MIN_PLAIN;
      if (blocks < least) {
        giveAll(pool, pages);
        return where + "the disk has " + blocks.toString() + " blocks of 4 KiB; a database needs at least " + least.toString();
      }
      sb = L.format(blocks, name, formatChecksums);
      sb.generation = 0; // the first update below writes generation 1 to copy A
      const m = new Mount(dev, sb, 1);
      mounted = m;
      const w = writeSuper(m);
      if (w.length > 0) {
        mounted = null;
        return where + "formatting: " + w;
      }
      giveAll(pool, pages);
      return "";
    }
    if (corrupt) return where + "the superblock is corrupt (checksum mismatch in every copy): the disk was damaged; restore it from a backup";
    return where + "the disk holds something else (no Morgana SQLite superblock in blocks 0 and 1): refusing to overwrite it; give the unikernel a blank disk";
  }
  sb = L.decode(pages[best]);
  slot = <u64>best;
  giveAll(pool, pages);
  const bad = L.check(sb, blocks);
  if (bad.length > 0) return where + "the superblock is inconsistent: " + bad;
  if (sb.name != name) return where + "the disk holds database \"" + sb.name + "\", not \"" + name + "\"";
  mounted = new Mount(dev, sb, slot);
  return "";
}

/** Forgets the mounted disk (after the database is closed). */
export function unmount(): void {
  mounted = null;
}

/**
 * Writes the superblock with both files' durable sizes to the next copy, durably: a
 * barrier (its pre-flush makes every earlier write durable first), then a flush, because
 * xen-blkback's barrier write itself is not durable until a later flush completes
 * (blkback.c: REQ_PREFLUSH, no FUA). Without barriers: flush, write, flush.
 */
function writeSuper(m: Mount): string {
  const sb = m.sb;
  sb.generation++;
  sb.dbBytes = m.db.durable;
  sb.journalBytes = m.journal.durable;
  if (m.sums != null) m.sums!.recording(sb.dbBytes, sb.journalBytes);
  const page = m.pool.get();
  if (page == 0) return "out of memory for an I/O page";
  L.encode(sb, page);
  const sector = m.nextSlot * m.spb;
  let e: string;
  if (m.dev.info().barrier) {
    barriers++;
    flushes++;
    e = finish([m.dev.barrier(sector, [page])]);
    if (e.length == 0) e = finish([m.dev.flush()]);
  } else {
    // Flush before (orders the data before the superblock) and after (makes it durable).
    flushes += 2;
    writes++;
    e = finish([m.dev.flush()]);
    if (e.length == 0) e = finish([m.dev.write(sector, [page])]);
    if (e.length == 0) e = finish([m.dev.flush()]);
  }
  give(m.pool, page);
  if (e.length > 0) {
    sb.generation--;
    return "superblock update: " + e;
  }
  m.nextSlot ^= 1;
  m.recDb = sb.dbBytes;
  m.recJournal = sb.journalBytes;
  if (m.sums != null) m.sums!.recorded(sb.dbBytes, sb.journalBytes, true); // durable: flushed after it
  return "";
}

/** Makes every completed write durable: one flush (an empty barrier where only barriers exist). */
function flushAll(m: Mount): string {
  flushes++;
  const e = finish([m.dev.flush()]);
  if (e.length > 0) return "flush: " + e;
  if (m.sums != null) m.sums!.durable();
  return "";
}

function fileOf(fid: i32): File | null {
  const m = mounted;
  if (m == null) return null;
  if (fid == FID_DB) return m.db;
  if (fid == FID_JOURNAL) return m.journal;
  return null;
}

function cName(p: usize): string {
  if (p == 0) return "";
  let n: usize = 0;
  while (n < 512 && load<u8>(p + n) != 0) n++;
  return String.UTF8.decodeUnsafe(p, n);
}

export function open(name: usize, flags: i32, outFlags: usize): i32 {
  const m = mounted;
  const n = cName(name);
  if (m == null) return -fail(c.CANTOPEN, "no disk is mounted: open the database with sqlite.open(device, name)");
  let fid = 0;
  if (n == m.sb.name && (flags & c.OPEN_MAIN_DB) != 0) fid = FID_DB;
  else if (n == m.sb.name + "-journal" && (flags & c.OPEN_MAIN_JOURNAL) != 0) fid = FID_JOURNAL;
  else return -fail(c.CANTOPEN, "only " + m.sb.name + " and its journal live on this disk (asked for \"" + n + "\", flags 0x" + flags.toString(16) + ")");
  const f = fileOf(fid)!;
  if (f.open) return -fail(c.CANTOPEN, f.what + " is already open");
  f.open = true;
  store<i32>(outFlags, flags);
  return fid;
}

export function close(fid: i32): i32 {
  const f = fileOf(fid);
  if (f == null) return fail(c.IOERR, "close of unknown file " + fid.toString());
  f.open = false;
  // Unsynced writes need not survive a close (SQLite syncs what it needs first), but
  // writing them keeps a later reopen consistent with what SQLite believes.
  const e = writeBack(mounted!, f);
  return e.length > 0 ? fail(c.IOERR_WRITE, f.what + ": " + e) : c.OK;
}

/** Reads `blocks` disk blocks of f, starting at block `first`, into pages (batched). */
function readBlocks(m: Mount, f: File, first: u64, pages: Array<usize>): string {
  const ops = new Array<BlockOp>();
  for (let k = 0; k < pages.length; k += m.maxPages) {
    const n = min(m.maxPages, pages.length - k);
    ops.push(m.dev.read((f.start + first + <u64>k) * m.spb, pages.slice(k, k + n)));
    reads++;
  }
  const e = finish(ops);
  if (e.length > 0 || m.sums == null) return e;
  for (let k = 0; k < pages.length; k++) {
    const v = m.sums!.verify(f.start, f.size, first + <u64>k, pages[k]);
    if (v.length > 0) return v;
  }
  return "";
}

export function read(fid: i32, buf: usize, amt: i32, off: i64): i32 {
  const f = fileOf(fid);
  if (f == null || amt < 0 || off < 0) return fail(c.IOERR_READ, "read of file " + fid.toString() + " (" + amt.toString() + " bytes at " + off.toString() + ")");
  const m = mounted!;
  const o = <u64>off;
  const end = o + <u64>amt;
  const avail = o >= f.size ? 0 : <i32>(min(end, f.size) - o);
  if (avail < amt) memory.fill(buf + <usize>avail, 0, <usize>(amt - avail)); // SQLite requires the zero fill
  if (avail > 0) {
    const first = o / BLOCK;
    const last = (o + <u64>avail - 1) / BLOCK;
    // Blocks not in the cache, read in runs of consecutive blocks.
    const missing = new Array<u64>();
    for (let b = first; b <= last; b++) if (!f.dirty.has(b)) missing.push(b);
    const got = new Map<u64, usize>();
    let i = 0;
    const ops = new Array<BlockOp>();
    const held = new Array<usize>();
    while (i < missing.length) {
      let j = i + 1;
      while (j < missing.length && missing[j] == missing[j - 1] + 1 && j - i < m.maxPages) j++;
      const pages = m.pool.take(j - i);
      if (pages.length == 0) {
        // The reads already issued must settle before their pages go back.
        finish(ops);
        giveAll(m.pool, held);
        return fail(c.IOERR_NOMEM, "out of memory for I/O pages");
      }
      for (let k = 0; k < pages.length; k++) {
        got.set(missing[i + k], pages[k]);
        held.push(pages[k]);
      }
      ops.push(m.dev.read((f.start + missing[i]) * m.spb, pages));
      reads++;
      i = j;
    }
    let e = finish(ops);
    // Every block read from disk is checked before SQLite sees a byte of it.
    if (e.length == 0 && m.sums != null)
      for (let k = 0; k < missing.length && e.length == 0; k++) e = m.sums!.verify(f.start, f.size, missing[k], got.get(missing[k]));
    if (e.length == 0) {
      let pos = o;
      let out = buf;
      const stop = o + <u64>avail;
      while (pos < stop) {
        const b = pos / BLOCK;
        const within = pos % BLOCK;
        const n = min(BLOCK - within, stop - pos);
        const page = f.dirty.has(b) ? f.dirty.get(b) : got.get(b);
        memory.copy(out, page + <usize>within, <usize>n);
        pos += n;
        out += <usize>n;
      }
    }
    giveAll(m.pool, held);
    if (e.length > 0) return fail(c.IOERR_READ, f.what + ": " + e);
  }
  return avail < amt ? c.IOERR_SHORT_READ : c.OK;
}

export function write(fid: i32, buf: usize, amt: i32, off: i64): i32 {
  const f = fileOf(fid);
  if (f == null || amt < 0 || off < 0) return fail(c.IOERR_WRITE, "write to file " + fid.toString() + " (" + amt.toString() + " bytes at " + off.toString() + ")");
  const m = mounted!;
  const o = <u64>off;
  const end = o + <u64>amt;
  if (end > f.blocks * BLOCK)
    return fail(c.FULL, f.what + " is full: a write ending at byte " + end.toString() + " passes its extent of " + (f.blocks * BLOCK).toString() + " bytes (use a larger disk)");
  let pos = o;
  let src = buf;
  while (pos < end) {
    const b = pos / BLOCK;
    const within = pos % BLOCK;
    const n = min(BLOCK - within, end - pos);
    let page: usize = 0;
    if (f.dirty.has(b)) page = f.dirty.get(b);
    else {
      page = m.pool.get();
      if (page == 0) return fail(c.IOERR_NOMEM, "out of memory for I/O pages");
      // A partial block that holds file data: read it first (read-modify-write).
      if (n < BLOCK && b * BLOCK < f.size) {
        const e = readBlocks(m, f, b, [page]);
        if (e.length > 0) {
          give(m.pool, page);
          return fail(c.IOERR_WRITE, f.what + ": reading block " + b.toString() + " to modify it: " + e);
        }
      } else if (n < BLOCK) memory.fill(page, 0, <usize>BLOCK);
      f.dirty.set(b, page);
    }
    memory.copy(page + <usize>within, src, <usize>n);
    pos += n;
    src += <usize>n;
  }
  if (end > f.size) f.size = end;
  if (f.dirty.size > DIRTY_LIMIT) {
    const e = writeBack(m, f);
    if (e.length > 0) return fail(c.IOERR_WRITE, f.what + ": " + e);
  }
  return c.OK;
}

/** Writes f's dirty blocks (no flush): runs of consecutive blocks as scatter-gather requests. */
function writeBack(m: Mount, f: File): string {
  if (f.dirty.size == 0) return "";
  const keys = f.dirty.keys();
  keys.sort((a: u64, b: u64): i32 => (a < b ? -1 : a > b ? 1 : 0));
  if (m.sums != null) {
    // The blocks' checksums go to disk first (durably where a cut could leave either content).
    const all = new Array<usize>();
    for (let k = 0; k < keys.length; k++) all.push(f.dirty.get(keys[k]));
    const s = m.sums!.prepare(f.start, keys, all);
    if (s.length > 0) return s;
  }
  const ops = new Array<BlockOp>();
  let i = 0;
  while (i < keys.length) {
    let j = i + 1;
    while (j < keys.length && keys[j] == keys[j - 1] + 1 && j - i < m.maxPages) j++;
    const pages = new Array<usize>();
    for (let k = i; k < j; k++) pages.push(f.dirty.get(keys[k]));
    ops.push(m.dev.write((f.start + keys[i]) * m.spb, pages));
    writes++;
    i = j;
  }
  const e = finish(ops);
  if (e.length > 0) {
    if (m.sums != null) m.sums!.failed(f.start, keys);
    return e; // the blocks stay dirty: a later sync retries
  }
  for (let k = 0; k < keys.length; k++) give(m.pool, f.dirty.get(keys[k]));
  f.dirty.clear();
  return "";
}

export function truncate(fid: i32, size: i64): i32 {
  const f = fileOf(fid);
  if (f == null || size < 0) return fail(c.IOERR_TRUNCATE, "truncate of file " + fid.toString() + " to " + size.toString());
  const s = <u64>size;
  if (s > f.blocks * BLOCK) return fail(c.FULL, f.what + ": truncate to " + s.toString() + " bytes passes its extent");
  if (s < f.size) {
    // Drop cached blocks wholly past the end; zero the tail of the last one.
    const keys = f.dirty.keys();
    for (let k = 0; k < keys.length; k++) {
      const b = keys[k];
      if (b * BLOCK >= s) {
        give(mounted!.pool, f.dirty.get(b));
        f.dirty.delete(b);
      } else if ((b + 1) * BLOCK > s) memory.fill(f.dirty.get(b) + <usize>(s - b * BLOCK), 0, <usize>((b + 1) * BLOCK - s));
    }
  }
  f.size = s;
  return c.OK;
}

export function sync(fid: i32, flags: i32): i32 {
  const f = fileOf(fid);
  if (f == null) return fail(c.IOERR_FSYNC, "sync of unknown file " + fid.toString());
  const m = mounted!;
  let e = writeBack(m, f);
  if (e.length == 0) {
    f.durable = f.size;
    // Sizes as the last durable superblock recorded them: the data needs only a flush
    // (a commit's usual case); else the superblock, durably. A failed update is redone.
    if (m.db.durable == m.recDb && m.journal.durable == m.recJournal) e = flushAll(m);
    else e = writeSuper(m);
  }
  return e.length > 0 ? fail(c.IOERR_FSYNC, f.what + ": sync: " + e) : c.OK;
}

export function size(fid: i32, out: usize): i32 {
  const f = fileOf(fid);
  if (f == null) return fail(c.IOERR_FSTAT, "size of unknown file " + fid.toString());
  store<i64>(out, <i64>f.size);
  return c.OK;
}

export function characteristics(fid: i32): i32 {
  return c.IOCAP_POWERSAFE_OVERWRITE;
}

/** Only the journal can be deleted: its size becomes 0, durably (the commit point). */
export function remove(name: usize, syncDir: i32): i32 {
  const m = mounted;
  const n = cName(name);
  if (m == null || n != m.sb.name + "-journal") return fail(c.IOERR_DELETE, "cannot delete \"" + n + "\": only the journal can be deleted");
  const f = m.journal;
  for (let k = 0, keys = f.dirty.keys(); k < keys.length; k++) give(m.pool, f.dirty.get(keys[k]));
  f.dirty.clear();
  f.size = 0;
  f.durable = 0;
  const e = writeSuper(m);
  return e.length > 0 ? fail(c.IOERR_DELETE, f.what + ": delete: " + e) : c.OK;
}

export function access(name: usize, flags: i32, out: usize): i32 {
  const m = mounted;
  const n = cName(name);
  let exists = 0;
  if (m != null) {
    if (n == m.sb.name) exists = 1;
    else if (n == m.sb.name + "-journal") exists = m.journal.size > 0 ? 1 : 0;
  }
  if (flags == c.ACCESS_READWRITE && exists == 1 && m!.dev.info().readOnly) exists = 0;
  store<i32>(out, exists);
  return c.OK;
}

/** Entropy from the platform (ABI entropy_fill); without one, clock jitter mixed by splitmix64. */
export function randomness(n: i32, out: usize): i32 {
  if (n <= 0) return 0;
  if (abi.entropy_fill(out, n) == n) return n;
  let x = <u64>time.monotonic() ^ (<u64>time.wall() << 17);
  for (let i = 0; i < n; i++) {
    x += 0x9e3779b97f4a7c15 ^ <u64>time.monotonic();
    let z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    store<u8>(out + <usize>i, <u8>(z ^ (z >> 31)));
  }
  return n;
}

export function sleep(us: i32): i32 {
  if (us > 0) time.sleep(<i64>us * time.NS_PER_US);
  return us;
}

/** Now, as SQLite's xCurrentTimeInt64 wants it: milliseconds since the Julian epoch. */
export function julianMs(): i64 {
  return time.wall() / time.NS_PER_MS + 210_866_760_000_000;
}
