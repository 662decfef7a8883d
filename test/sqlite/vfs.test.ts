// The SQLite VFS on the harness's strict blkback (assembly/apps/sqlvfs): the on-disk
// layout, request batching and ordering, persistence across guests, and every kind
// of disk it must refuse with a clear error instead of a trap or an overwrite.
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
    crcOk: b.readUInt32LE(4092) === crc32(b.subarray(0, 4092)),
  };
}

/** A disk written by one sqlvfs guest: `rows` rows of `size` bytes. */
function written(rows = 50, size = 300, opts: DiskOptions = {}) {
  const d = new Disk({ sectors: 16384, ...opts });
  const w = run(`write ${rows} ${size}`, d);
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
      expect(s.version).toBe(1);
      expect(s.name).toBe("vfs.db");
      expect(s.diskBlocks).toBe(2048); // 8 MiB of 4 KiB blocks
      expect(s.journal).toEqual([2, 256]); // an eighth of the disk
      expect(s.db).toEqual([258, 2048 - 258]);
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

  test("a commit: batched writes, no flush, barriers only at syncs, nothing pending after COMMIT", () => {
    const { disk, run: w } = written(400, 1000); // ~400 KB: ~100 database pages in one transaction
    const m = /(\d+) write requests, (\d+) barriers, (\d+) flushes/.exec(w.console)!;
    const [writes, barriers, flushes] = [Number(m[1]), Number(m[2]), Number(m[3])];
    expect(flushes).toBe(0);
    // Journal sync, journal header sync, database sync, journal delete (+ format and schema on a blank disk).
    expect(barriers).toBeGreaterThanOrEqual(4);
    const log = w.domain.vbds[0].log;
    const dataWrites = log.filter((e) => e.op === "write");
    expect(dataWrites.length).toBeGreaterThanOrEqual(writes); // + the format and the schema
    expect(log.some((e) => e.op === "flush")).toBe(false);
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
    // The last request of the commit is the superblock barrier that deletes the journal.
    const lastOp = log[log.length - 1];
    expect(lastOp.op).toBe("barrier");
    expect(lastOp.sector === 0 || lastOp.sector === 8).toBe(true);
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
    for (const i of [0, 1]) {
      const b = Buffer.from(disk.durable.buffer, i * SB, SB);
      b.writeUInt32LE(2, 16);
      b.writeUInt32LE(crc32(b.subarray(0, 4092)), 4092);
    }
    disk.current = disk.durable.slice();
    refuses(disk, /^FAIL: vbd 51712: the superblock is version 2; this runtime reads version 1/);
  });

  test("a truncated disk", () => {
    const { disk } = written();
    refuses(new Disk({ bytes: disk.durable.slice(0, 8192 * 512) }), /^FAIL: vbd 51712: the superblock is inconsistent: the disk has 1024 blocks but was formatted with 2048: was it truncated\?$/);
  });

  test("hostile extents with a valid checksum", () => {
    const { disk } = written();
    for (const i of [0, 1]) {
      const b = Buffer.from(disk.durable.buffer, i * SB, SB);
      b.writeBigUInt64LE(1n << 40n, 72); // database bytes far past its extent
      b.writeUInt32LE(crc32(b.subarray(0, 4092)), 4092);
    }
    disk.current = disk.durable.slice();
    refuses(disk, /^FAIL: vbd 51712: the superblock is inconsistent: the database size 1099511627776 exceeds its extent/);
  });

  test("another database's disk", () => {
    const crash = new Disk({ sectors: 16384 });
    const r = runWasm({ wasm: wasmPath("sqlcrash"), cmdline: "1 2", disks: [crash] });
    expect(last(r.console)).toBe("TEST PASS");
    refuses(crash, /^FAIL: vbd 51712: the disk holds database "crash.db", not "vfs.db"$/);
  });

  test("garbage where the database should be: SQLite's error, no trap", () => {
    const { disk } = written();
    for (let i = 258 * SB; i < 270 * SB; i++) disk.durable[i] = (i * 7) & 0xff;
    disk.current = disk.durable.slice();
    refuses(disk, /^FAIL: opening vfs.db: (file is not a database|database disk image is malformed)$/);
  });

  test("too small, and blank but read-only", () => {
    refuses(new Disk({ sectors: 256 }), /^FAIL: vbd 51712: the disk has 32 blocks of 4 KiB; a database needs at least 50$/);
    refuses(new Disk({ sectors: 4096, readOnly: true }), /^FAIL: vbd 51712: the disk is blank and read-only: nothing to open$/);
  });
});

describe("sqlvfs: errors during transactions", () => {
  test("a full database extent: SQLITE_FULL with the extent named; the disk stays consistent", () => {
    const d = new Disk({ sectors: 50 * 8 }); // the minimum: 32 database blocks
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
