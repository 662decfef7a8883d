// The SQLite VFS on the harness's strict blkback (assembly/apps/sqlvfs): the on-disk
// layout, request batching and ordering, persistence across guests, every kind of
// disk it must refuse with a clear error instead of a trap or an overwrite (hand-made
// superblocks with a valid CRC included), and block checksums: a flipped bit in the
// database, the journal or the checksum extent is an error naming the block.
import { describe, expect, test } from "vitest";
import { crc32 } from "node:zlib";
import { runWasm } from "../../tools/harness/run.ts";
import { Disk, DiskOptions } from "../../tools/harness/blkback.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

const run = (cmdline: string, disk: Disk) => runWasm({ wasm: wasmPath("sqlvfs"), cmdline, disks: [disk] });
const last = (s: string) => s.trimEnd().split("\n").pop();
const MAGIC = "MorganaSQLiteVFS";
const SB = 4096;

/** The superblock copy `i` of a disk, decoded (layout.ts). */
function superblock(bytes: Uint8Array, i: number) {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset + i * SB, SB);
  return {
    magic: b.subarray(0, 16).toString("latin1"),
    version: b.readUInt32LE(16),
    generation: Number(b.readBigUInt64LE(24)),
    diskBlocks: Number(b.readBigUInt64LE(32)),
    journal: [Number(b.readBigUInt64LE(40)), Number(b.readBigUInt64LE(48))],
    db: [Number(b.readBigUInt64LE(56)), Number(b.readBigUInt64LE(64))],
    dbBytes: Number(b.readBigUInt64LE(72)),
    journalBytes: Number(b.readBigUInt64LE(80)),
    name: b.subarray(88, 152).toString("utf8").replace(/\0+$/, ""),
    sums: [Number(b.readBigUInt64LE(152)), Number(b.readBigUInt64LE(160))],
    crcOk: b.readUInt32LE(4092) === crc32(b.subarray(0, 4092)),
  };
}

/** Rewrites fields of superblock copy i (u64 unless given as [value, "u32"]) and fixes its CRC. */
function patch(disk: Disk, i: number, fields: Record<number, bigint | [number, "u32"]>) {
  const b = Buffer.from(disk.durable.buffer, disk.durable.byteOffset + i * SB, SB);
  for (const [off, v] of Object.entries(fields)) {
    if (Array.isArray(v)) b.writeUInt32LE(v[0], Number(off));
    else b.writeBigUInt64LE(BigInt.asUintN(64, v), Number(off));
  }
  b.writeUInt32LE(crc32(b.subarray(0, 4092)), 4092);
  disk.current = disk.durable.slice();
}
/** Superblock field offsets (layout.ts). */
const F = { version: 16, generation: 24, disk: 32, jstart: 40, jblocks: 48, dstart: 56, dblocks: 64, dbytes: 72, jbytes: 80, sstart: 152, sblocks: 160 };

/** A disk written by one sqlvfs guest: `rows` rows of `size` bytes (plain: layout version 1, no checksums). */
function written(rows = 50, size = 300, opts: DiskOptions = {}, plain = false) {
  const d = new Disk({ sectors: 16384, ...opts });
  const w = run(`${plain ? "plain " : ""}write ${rows} ${size}`, d);
  expect(last(w.console), w.console).toBe("TEST PASS");
  return { disk: d, run: w };
}

describe("sqlvfs: layout and persistence", () => {
  test("a blank disk is formatted; a second guest reads every row back", () => {
    const { disk } = written(100, 200);
    const copies = [superblock(disk.durable, 0), superblock(disk.durable, 1)];
    for (const s of copies) {
      expect(s.magic).toBe(MAGIC);
      expect(s.crcOk).toBe(true);
      expect(s.version).toBe(2);
      expect(s.name).toBe("vfs.db");
      expect(s.diskBlocks).toBe(2048); // 8 MiB of 4 KiB blocks
      expect(s.journal).toEqual([2, 256]); // an eighth of the disk
      // The checksum extent at the end: 1/64 of the disk covers the journal and database.
      expect(s.sums).toEqual([2048 - 32, 32]);
      expect(s.db).toEqual([258, 2048 - 258 - 32]);
      expect(s.sums[1] * 63).toBeGreaterThanOrEqual(s.journal[1] + s.db[1]);
    }
    const cur = copies[0].generation > copies[1].generation ? copies[0] : copies[1];
    expect(Math.abs(copies[0].generation - copies[1].generation)).toBe(1);
    expect(cur.journalBytes).toBe(0); // committed: no hot journal
    expect(cur.dbBytes % 4096).toBe(0);
    expect(cur.dbBytes).toBeGreaterThanOrEqual(100 * 200);
    // SQLite's own header at the start of the database extent.
    expect(Buffer.from(disk.durable.subarray(258 * SB, 258 * SB + 16)).toString("latin1")).toBe("SQLite format 3\0");
    const r = run("read", disk);
    expect(r.console).toMatch(/^sqlvfs: 100 rows, checksum \d+$/m);
    expect(last(r.console)).toBe("TEST PASS");
    // Two more transactions on the same disk, then all 300 rows are there.
    expect(last(run("write 100 200", disk).console)).toBe("TEST PASS");
    expect(last(run("write 100 200", disk).console)).toBe("TEST PASS");
    expect(run("read", disk).console).toMatch(/^sqlvfs: 300 rows/m);
  });

  test("a commit without checksums (version 1): batched writes, one flush per sync, a superblock barrier only when a size changed, nothing pending after COMMIT", () => {
    const { disk, run: w } = written(400, 1000, {}, true); // ~400 KB: ~100 database pages in one transaction
    expect(superblock(disk.durable, 0).version).toBe(1);
    expect(superblock(disk.durable, 0).sums).toEqual([0, 0]);
    const m = /(\d+) write requests, (\d+) barriers, (\d+) flushes/.exec(w.console)!;
    const [writes, barriers, flushes] = [Number(m[1]), Number(m[2]), Number(m[3])];
    // Each sync ends with one flush: journal, journal header, database, and the commit (the
    // journal header zeroed). The journal and the database grew: their sizes go in the
    // superblock as a barrier, itself durable only after the flush (xen-blkback).
    expect(flushes).toBeGreaterThanOrEqual(4);
    expect(barriers).toBeGreaterThanOrEqual(2);
    expect(barriers).toBeLessThan(flushes);
    const log = w.domain.vbds[0].log;
    const dataWrites = log.filter((e) => e.op === "write");
    expect(dataWrites.length).toBeGreaterThanOrEqual(writes); // + the format and the schema
    // Contiguous pages leave together: far fewer requests than pages written.
    const pages = dataWrites.reduce((n, e) => n + e.nsec / 8, 0);
    expect(pages).toBeGreaterThan(100);
    expect(writes).toBeLessThan(pages / 4);
    expect(Math.max(...dataWrites.map((e) => e.nsec))).toBeGreaterThanOrEqual(8 * 16);
    // Every request is whole 4 KiB blocks.
    for (const e of log.filter((e) => e.op !== "read" && e.nsec > 0)) {
      expect(e.sector % 8).toBe(0);
      expect(e.nsec % 8).toBe(0);
    }
    // The transaction is durable when COMMIT returns: nothing left unflushed.
    expect(disk.pending).toEqual([]);
    // The last request of the commit is the flush that makes it durable.
    const lastOp = log[log.length - 1];
    expect(lastOp.op).toBe("flush");
    expect(run("read", disk).console).toMatch(/^sqlvfs: 400 rows/m);
  });

  test("a commit with checksums: the checksum writes, and a flush only before rewriting live blocks", () => {
    const { disk, run: w } = written(400, 1000);
    console.log(w.console.split("\n").find((l) => l.startsWith("sqlvfs: wrote")));
    const m = /(\d+) write requests, (\d+) barriers, (\d+) flushes, (\d+) reads; checksums: (\d+) writes, (\d+) flushes, (\d+) reads/.exec(w.console)!;
    expect(m, w.console).not.toBeNull();
    const [writes, barriers, flushes, , sumWrites, sumFlushes] = m.slice(1).map(Number);
    expect(flushes).toBeGreaterThanOrEqual(4); // one per sync (see above)
    expect(barriers).toBeGreaterThanOrEqual(2);
    // A checksum write per file write-back (journal, journal header, database), no more
    // than one checksum block each here; a flush where live blocks are rewritten
    // (the journal header, the database's existing pages), none for appends.
    expect(sumWrites).toBeGreaterThanOrEqual(3);
    expect(sumWrites).toBeLessThanOrEqual(8);
    expect(sumFlushes).toBeGreaterThanOrEqual(1);
    expect(sumFlushes).toBeLessThanOrEqual(5);
    const log = w.domain.vbds[0].log;
    const sb = superblock(disk.durable, 0);
    const inSums = (e: { sector: number }) => e.sector >= sb.sums[0] * 8 && e.sector < (sb.sums[0] + sb.sums[1]) * 8;
    expect(log.filter((e) => e.op === "write" && inSums(e)).length).toBeGreaterThanOrEqual(sumWrites);
    expect(log.filter((e) => e.op === "flush").length).toBeGreaterThanOrEqual(sumFlushes);
    expect(writes).toBeLessThan(40);
    expect(disk.pending).toEqual([]);
    expect(run("read", disk).console).toMatch(/^sqlvfs: 400 rows/m);
  });

  test("a disk without barriers: flush, superblock, flush", () => {
    const { disk, run: w } = written(20, 100, { barrier: false });
    expect(w.domain.vbds[0].log.some((e) => e.op === "barrier")).toBe(false);
    expect(w.domain.vbds[0].log.some((e) => e.op === "flush")).toBe(true);
    expect(disk.pending).toEqual([]);
    expect(run("read", disk).console).toMatch(/^sqlvfs: 20 rows/m);
  });

  test("4 KiB sectors", () => {
    const { disk } = written(30, 5000, { sectorSize: 4096 });
    expect(run("read", disk).console).toMatch(/^sqlvfs: 30 rows/m);
  });

  test("a version-1 disk (no checksums) keeps working: read, written, still version 1", () => {
    const { disk } = written(30, 500, {}, true);
    expect(last(run("write 30 500", disk).console)).toBe("TEST PASS"); // checksums on: the disk stays version 1
    expect(superblock(disk.durable, 0).version).toBe(1);
    expect(superblock(disk.durable, 1).version).toBe(1);
    expect(run("read", disk).console).toMatch(/^sqlvfs: 60 rows/m);
  });
});

describe("sqlvfs: disks it must refuse", () => {
  const refuses = (disk: Disk, message: RegExp) => {
    const before = disk.durable.slice();
    const r = run("open", disk);
    expect(r.outcome).toBe("poweroff"); // an error, never a trap
    expect(last(r.console)).toMatch(message);
    expect(Buffer.compare(before, disk.durable)).toBe(0); // not a byte written
    return r;
  };

  test("a foreign disk (no magic) is never overwritten", () => {
    const bytes = new Uint8Array(16384 * 512);
    for (let i = 0; i < bytes.length; i += 7) bytes[i] = (i * 31) & 0xff;
    refuses(new Disk({ bytes }), /^FAIL: vbd 51712: the disk holds something else \(no Morgana SQLite superblock in blocks 0 and 1\): refusing to overwrite it; give the unikernel a blank disk$/);
  });

  test("a corrupt superblock: one bad copy is survived, two are refused", () => {
    const { disk } = written();
    const gens = [superblock(disk.durable, 0).generation, superblock(disk.durable, 1).generation];
    const older = gens[0] < gens[1] ? 0 : 1;
    disk.durable[older * SB + 30] ^= 0x40;
    disk.current = disk.durable.slice();
    expect(run("read", disk).console).toMatch(/^sqlvfs: 50 rows/m);
    const d2 = written().disk;
    d2.durable[100] ^= 1;
    d2.durable[SB + 100] ^= 1;
    d2.current = d2.durable.slice();
    refuses(d2, /^FAIL: vbd 51712: the superblock is corrupt \(checksum mismatch in every copy\)/);
  });

  test("another version", () => {
    const { disk } = written();
    for (const i of [0, 1]) patch(disk, i, { [F.version]: [3, "u32"] });
    refuses(disk, /^FAIL: vbd 51712: the superblock is version 3; this runtime reads versions 1 and 2/);
  });

  test("a truncated disk", () => {
    const { disk } = written();
    refuses(new Disk({ bytes: disk.durable.slice(0, 8192 * 512) }), /^FAIL: vbd 51712: the superblock is inconsistent: the disk has 1024 blocks but was formatted with 2048: was it truncated\?$/);
  });

  test("hostile extents with a valid checksum", () => {
    const { disk } = written();
    for (const i of [0, 1]) patch(disk, i, { [F.dbytes]: 1n << 40n }); // database bytes far past its extent
    refuses(disk, /^FAIL: vbd 51712: the superblock is inconsistent: the database size 1099511627776 exceeds its extent of 1758 blocks$/);
  });

  // Hand-made superblocks, CRC-valid, each written to both copies: refused, never mounted.
  const U64 = (1n << 64n) - 1n;
  const bad: [string, Record<number, bigint | [number, "u32"]>, RegExp][] = [
    ["journal overlapping the database", { [F.jblocks]: 300n }, /the journal extent \[2, \+300\) overlaps the database extent \[258, \+1758\)$/],
    ["database overlapping the superblocks", { [F.dstart]: 1n }, /the database extent \[1, \+1758\) overlaps the superblocks \[0, \+2\)$/],
    ["checksums overlapping the end of the database", { [F.sstart]: 2000n }, /the checksum extent \[2000, \+32\) overlaps the database extent \[258, \+1758\)$/],
    ["checksums inside the journal", { [F.sstart]: 100n }, /the checksum extent \[100, \+32\) overlaps the journal extent \[2, \+256\)$/],
    ["checksums past the end of the disk", { [F.sstart]: 2030n }, /the checksum extent \[2030, \+32\) lies outside the 2048-block disk$/],
    ["checksum extent too small", { [F.sblocks]: 3n, [F.sstart]: 2045n }, /the checksum extent has 3 blocks; the journal and database need 32$/],
    ["database past the end of the disk", { [F.dblocks]: 1800n }, /the database extent \[258, \+1800\) lies outside the 2048-block disk$/],
    ["database start past the disk (diskBlocks - dbStart would wrap)", { [F.dstart]: 5000n }, /the database extent \[5000, \+1758\) lies outside the 2048-block disk$/],
    ["start + blocks wrapping 2^64", { [F.dstart]: U64 - 9n, [F.dblocks]: 20n }, /the database extent \[18446744073709551606, \+20\) lies outside the 2048-block disk$/],
    ["journal blocks wrapping 2^64", { [F.jblocks]: U64 }, /the journal extent \[2, \+18446744073709551615\) lies outside/],
    ["an empty database extent", { [F.dblocks]: 0n }, /the database extent \[258, \+0\) is empty$/],
    ["a database size that wraps when rounded up", { [F.dbytes]: U64 }, /the database size 18446744073709551615 exceeds its extent of 1758 blocks$/],
    ["a journal size past its extent", { [F.jbytes]: 256n * 4096n + 1n }, /the journal size 1048577 exceeds its extent of 256 blocks$/],
    ["a huge disk size", { [F.disk]: U64 }, /the disk has 2048 blocks but was formatted with 18446744073709551615: was it truncated\?$/],
    ["a version-1 superblock with a checksum extent", { [F.version]: [1, "u32"] }, /a version-1 superblock records a checksum extent \[2016, \+32\)$/],
  ];
  for (const [name, fields, message] of bad)
    test(`hand-made superblock: ${name}`, () => {
      const { disk } = written(5, 100);
      for (const i of [0, 1]) patch(disk, i, fields);
      refuses(disk, new RegExp(`^FAIL: vbd 51712: the superblock is inconsistent: ${message.source}`));
    });

  test("generations compared across the 64-bit wrap; two copies of one generation refused", () => {
    // Copy A at 2^64 - 1, copy B at 0: B is the newer one. B is made inconsistent, so it
    // must be the one refused (comparing plainly would mount A).
    const { disk } = written(5, 100);
    patch(disk, 0, { [F.generation]: U64 });
    patch(disk, 1, { [F.generation]: 0n, [F.dblocks]: 1800n });
    refuses(disk, /^FAIL: vbd 51712: the superblock is inconsistent: the database extent \[258, \+1800\) lies outside the 2048-block disk$/);
    // The other way round: A (2^64 - 1) is the older and the inconsistent one; B (0) mounts,
    // and the next update goes to A with generation 1.
    const d2 = written(5, 100).disk;
    const cur = superblock(d2.durable, 0).generation > superblock(d2.durable, 1).generation ? 0 : 1;
    for (let i = 0; i < SB; i++) d2.durable[(1 - cur) * SB + i] = d2.durable[cur * SB + i]; // the same current state in both
    patch(d2, 0, { [F.generation]: U64, [F.dblocks]: 1800n });
    patch(d2, 1, { [F.generation]: 0n });
    expect(run("read", d2).console).toMatch(/^sqlvfs: 5 rows/m);
    expect(last(run("write 1 100", d2).console)).toBe("TEST PASS");
    // The updates continued from 0 (1, 2, ...), not from 2^64 - 1.
    const gens = [superblock(d2.durable, 0), superblock(d2.durable, 1)];
    expect(gens.every((g) => g.crcOk && g.generation > 0 && g.generation < 100)).toBe(true);
    expect(Math.abs(gens[0].generation - gens[1].generation)).toBe(1);
    expect(run("read", d2).console).toMatch(/^sqlvfs: 6 rows/m);
    // Equal generations cannot come from alternating updates.
    const d3 = written(5, 100).disk;
    patch(d3, 0, { [F.generation]: 7n });
    patch(d3, 1, { [F.generation]: 7n });
    refuses(d3, /^FAIL: vbd 51712: the superblock is inconsistent: both copies claim generation 7; restore the disk from a backup$/);
  });

  test("another database's disk", () => {
    const crash = new Disk({ sectors: 16384 });
    const r = runWasm({ wasm: wasmPath("sqlcrash"), cmdline: "1 2", disks: [crash] });
    expect(last(r.console)).toBe("TEST PASS");
    refuses(crash, /^FAIL: vbd 51712: the disk holds database "crash.db", not "vfs.db"$/);
  });

  test("garbage where the database should be: the checksum error, or (no checksums) SQLite's, no trap", () => {
    const { disk } = written();
    for (let i = 258 * SB; i < 270 * SB; i++) disk.durable[i] = (i * 7) & 0xff;
    disk.current = disk.durable.slice();
    refuses(disk, /^FAIL: opening vfs.db: disk I\/O error \(database vfs.db: block 0 \(disk block 258\): checksum mismatch \(sector 0\) — the disk was damaged; restore from a backup\)$/);
    const plain = written(50, 300, {}, true).disk;
    for (let i = 258 * SB; i < 270 * SB; i++) plain.durable[i] = (i * 7) & 0xff;
    plain.current = plain.durable.slice();
    refuses(plain, /^FAIL: opening vfs.db: (file is not a database|database disk image is malformed)$/);
  });

  test("too small, and blank but read-only", () => {
    refuses(new Disk({ sectors: 256 }), /^FAIL: vbd 51712: the disk has 32 blocks of 4 KiB; a database needs at least 51$/);
    refuses(new Disk({ sectors: 4096, readOnly: true }), /^FAIL: vbd 51712: the disk is blank and read-only: nothing to open$/);
  });
});

describe("sqlvfs: errors during transactions", () => {
  test("a full database extent: SQLITE_FULL with the extent named; the disk stays consistent", () => {
    const d = new Disk({ sectors: 51 * 8 }); // the minimum: 32 database blocks
    expect(last(run("write 10 100", d).console)).toBe("TEST PASS");
    const r = run("write 200 1000", d);
    expect(r.outcome).toBe("poweroff");
    expect(last(r.console)).toMatch(/^FAIL: .*database or disk is full \(database vfs.db is full: a write ending at byte \d+ passes its extent of 131072 bytes \(use a larger disk\)\)$/);
    const back = run("read", d);
    expect(back.console).toMatch(/^sqlvfs: 10 rows/m);
    expect(last(back.console)).toBe("TEST PASS");
  });

  test("an I/O error names the device and request; the transaction rolls back", () => {
    const { disk } = written(10, 100);
    // Fail writes to the start of the database extent (block 258 = sector 2064).
    disk.opts.faults = { ioErrors: [{ sector: 258 * 8, count: 64 * 8, op: "write" }] };
    const r = run("write 300 1000", disk);
    expect(r.outcome).toBe("poweroff");
    expect(last(r.console)).toMatch(/^FAIL: .*disk I\/O error \(database vfs.db: sync: vbd 51712: write of sector 2064\+\d+: the backend reported an I\/O error \(BLKIF_RSP_ERROR\)\)$/);
    disk.opts.faults = {};
    const back = run("read", disk);
    expect(back.console).toMatch(/^sqlvfs: 10 rows/m);
    expect(last(back.console)).toBe("TEST PASS");
  });
});

describe("sqlvfs: block checksums", () => {
  const DAMAGED = "— the disk was damaged; restore from a backup";
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  /** A run that must end with exactly this clean error (the app exits, no trap), the disk untouched unless `writes`. */
  const failsWith = (cmd: string, disk: Disk, message: string, writes = false) => {
    const before = disk.durable.slice();
    const r = run(cmd, disk);
    expect(r.outcome, r.console).toBe("poweroff");
    expect(last(r.console)).toMatch(new RegExp(`^FAIL: .*${esc(message)}\\)$`));
    expect(r.console).not.toMatch(/TEST PASS/);
    if (!writes) expect(Buffer.compare(before, disk.durable)).toBe(0);
    return r;
  };

  test("a flipped bit in a row: an error naming the block, never the row", () => {
    const { disk } = written(50, 300);
    const at = Buffer.from(disk.durable).indexOf("row 37:", 258 * SB);
    expect(at).toBeGreaterThan(258 * SB);
    const off = at + 20;
    disk.durable[off] ^= 0x04;
    disk.current = disk.durable.slice();
    const blk = Math.floor(off / SB);
    failsWith("read", disk, `database vfs.db: block ${blk - 258} (disk block ${blk}): checksum mismatch (sector ${Math.floor((off % SB) / 512)}) ${DAMAGED}`);
    // The same flip without checksums (version 1) comes back as data: what checksums prevent.
    const plain = written(50, 300, {}, true).disk;
    const p = Buffer.from(plain.durable).indexOf("row 37:", 258 * SB) + 20;
    plain.durable[p] ^= 0x04;
    plain.current = plain.durable.slice();
    expect(last(run("read", plain).console)).toBe("FAIL: row 37 holds the wrong value");
  });

  test("a flipped bit in a hot journal (after a power cut): an error naming the journal block", () => {
    const { disk: base } = written(20, 300);
    // Cut the power ever later in a big transaction until the journal is hot (synced, not deleted).
    let hot: Disk | undefined;
    for (let cut = 1; cut < 60 && !hot; cut++) {
      const d = new Disk({ bytes: base.durable.slice(), faults: { powerCutAfter: cut } });
      const r = run("write 300 1000", d);
      expect(r.detail, r.console).toMatch(/power cut/);
      const s = [superblock(d.durable, 0), superblock(d.durable, 1)].filter((x) => x.crcOk).sort((a, b) => b.generation - a.generation)[0];
      // Hot: a journal header (SQLite's magic) with a record count, and records past block 1.
      const j = Buffer.from(d.durable.buffer, 2 * SB, 16);
      if (s.journalBytes > 3 * SB && j.readBigUInt64BE(0) === 0xd9d505f920a163d7n && j.readUInt32BE(8) > 0) hot = new Disk({ bytes: d.durable.slice() });
    }
    expect(hot).toBeDefined();
    // Untouched, the hot journal is rolled back: every sector of it matched its checksums.
    const clean = new Disk({ bytes: hot!.durable.slice() });
    const ok = run("read", clean);
    expect(ok.console).toMatch(/^sqlvfs: 20 rows/m);
    expect(last(ok.console)).toBe("TEST PASS");
    // One flipped bit in the journal's page records: the rollback stops with the block named.
    const off = 2 * SB + SB + 700; // journal block 1, sector 1
    hot!.durable[off] ^= 0x10;
    hot!.current = hot!.durable.slice();
    // (The rollback may write before it reaches the record; the error stays until the disk is restored.)
    const msg = `journal of vfs.db: block 1 (disk block 3): checksum mismatch (sector 1) ${DAMAGED}`;
    failsWith("read", hot!, msg, true);
    failsWith("read", hot!, msg, true);
  });

  test("a flipped bit in the checksum extent: an error naming the data block and the checksum block", () => {
    const { disk } = written(50, 300);
    const sb = superblock(disk.durable, 0);
    // Database block 0 is unit 256 × 8 = 2048 of journal + database: checksum sector 2048 / 63 = 32,
    // that is checksum block 4, sector 0, entry 32 (bytes 256 … 263).
    const tableBlock = sb.sums[0] + 4;
    disk.durable[tableBlock * SB + 256] ^= 0x01;
    disk.current = disk.durable.slice();
    failsWith("read", disk, `database vfs.db: block 0 (disk block 258): its checksum block 4 (disk block ${tableBlock}) is damaged ${DAMAGED}`);
  });

  test("a damaged checksum sector that covers nothing live is rewritten, not an error", () => {
    const { disk } = written(50, 300);
    const sb = superblock(disk.durable, 0);
    // The last checksum sector covers the end of the database extent, far past the data.
    const off = (sb.sums[0] + sb.sums[1]) * SB - 512 + 3;
    disk.durable[off] ^= 0x80;
    disk.current = disk.durable.slice();
    expect(run("read", disk).console).toMatch(/^sqlvfs: 50 rows/m);
    expect(last(run("write 50 300", disk).console)).toBe("TEST PASS");
    expect(run("read", disk).console).toMatch(/^sqlvfs: 100 rows/m);
  });

  test("an I/O error writing the checksums: the transaction fails with the request named and rolls back", () => {
    const { disk } = written(10, 100);
    disk.opts.faults = { ioErrors: [{ sector: 2016 * 8, count: 32 * 8, op: "write" }] }; // the whole checksum extent
    const r = run("write 300 1000", disk);
    expect(r.outcome).toBe("poweroff");
    expect(last(r.console)).toMatch(/^FAIL: .*disk I\/O error \((journal of vfs.db|database vfs.db): sync: writing the checksums: vbd 51712: write of sector 16\d{3}\+8: the backend reported an I\/O error \(BLKIF_RSP_ERROR\)\)$/);
    disk.opts.faults = {};
    const back = run("read", disk);
    expect(back.console).toMatch(/^sqlvfs: 10 rows/m);
    expect(last(back.console)).toBe("TEST PASS");
    expect(last(run("write 5 100", disk).console)).toBe("TEST PASS");
    expect(run("read", disk).console).toMatch(/^sqlvfs: 15 rows/m);
  });

  test("a transaction bigger than the write-back cache (blocks rewritten before a sync) reads back", () => {
    const { disk } = written(1500, 1000); // ~1.5 MB: the 1 MiB dirty limit writes blocks back mid-transaction
    const r = run("read", disk);
    expect(r.console).toMatch(/^sqlvfs: 1500 rows/m);
    expect(last(r.console)).toBe("TEST PASS");
  });
});
