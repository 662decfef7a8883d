// sqlvfs: drives the SQLite VFS for the harness and test-bed tests.
//
//   sqlvfs write <rows> <size>   one transaction inserting rows of size bytes; prints
//                                the VFS's requests for it
//   sqlvfs read                  prints the row count and a checksum of every value
//   sqlvfs open                  opens the database and prints "open ok"
//   sqlvfs commits <n> <size>    n transactions, each inserting a row of size bytes and
//                                rewriting an older one; prints requests per commit and time
//   sqlvfs plain <mode> ...      the same, formatting a blank disk without block
//                                checksums (layout version 1), for comparisons
//
// Each run prints "sqlvfs: <what happened>" lines, then exactly one result line:
// TEST PASS, or FAIL: <the error, as the runtime reports it>.
import { block, boot, console, sched, sqlite } from "../../runtime";
import * as vfs from "../../runtime/sqlite/vfs";
import * as blocksum from "../../runtime/sqlite/blocksum";
import { time } from "../../runtime";

function fail(why: string): void {
  console.log("FAIL: " + why);
}

/** x / n with two decimals ("3.25"). */
function hundredths(x: i64, n: i64): string {
  const c = (x * 100 + n / 2) / n;
  const f = c % 100;
  return (c / 100).toString() + "." + (f < 10 ? "0" : "") + f.toString();
}

function value(i: i64, size: i32): string {
  // Printable, row-specific, compressible by nothing: a row number and a pattern.
  let s = "row " + i.toString() + ":";
  let x = <u32>(i * 2654435761 + 1);
  while (s.length < size) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s += String.fromCharCode(97 + <i32>(x % 26));
  }
  return s.slice(0, size);
}

function main(): void {
  let args = boot.args();
  if (args.length > 0 && args[0] == "plain") {
    vfs.setFormatChecksums(false);
    args = args.slice(1);
  }
  const mode = args.length > 0 ? args[0] : "";
  const o = sched.wait(block.open());
  if (!o.ok) return fail(o.error);
  const db = sqlite.open(o.device!, "vfs.db");
  if (!db.ok) return fail(db.error);
  if (!db.exec("CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, v TEXT NOT NULL)")) return fail(db.error);
  if (mode == "open") {
    console.log("sqlvfs: open ok");
  } else if (mode == "write") {
    const rows = I64.parseInt(args[1]);
    const size = I32.parseInt(args[2]);
    const r0 = vfs.reads, w0 = vfs.writes, b0 = vfs.barriers, f0 = vfs.flushes;
    const t0 = blocksum.tableWrites, tf0 = blocksum.tableFlushes, tr0 = blocksum.tableReads + blocksum.preReads;
    if (!db.begin()) return fail(db.error);
    const top = db.statement("SELECT ifnull(max(i), 0) FROM t");
    const base = top.step() ? top.columnInt(0) : 0;
    top.finalize();
    const ins = db.statement("INSERT INTO t (v) VALUES (?)");
    for (let i: i64 = 1; i <= rows; i++) if (!ins.bindText(1, value(base + i, size)).run()) return fail(db.error);
    if (!db.commit()) return fail(db.error);
    console.log("sqlvfs: wrote " + rows.toString() + " rows of " + size.toString() + " bytes in one transaction: " +
      (vfs.writes - w0).toString() + " write requests, " + (vfs.barriers - b0).toString() + " barriers, " +
      (vfs.flushes - f0).toString() + " flushes, " + (vfs.reads - r0).toString() + " reads; checksums: " +
      (blocksum.tableWrites - t0).toString() + " writes, " + (blocksum.tableFlushes - tf0).toString() + " flushes, " +
      (blocksum.tableReads + blocksum.preReads - tr0).toString() + " reads");
  } else if (mode == "commits") {
    const n = I32.parseInt(args[1]);
    const size = I32.parseInt(args[2]);
    const r0 = vfs.reads, w0 = vfs.writes, b0 = vfs.barriers, f0 = vfs.flushes;
    const t0 = blocksum.tableWrites, tf0 = blocksum.tableFlushes, tr0 = blocksum.tableReads, p0 = blocksum.preReads;
    const ins = db.statement("INSERT INTO t (v) VALUES (?)");
    const upd = db.statement("UPDATE t SET v = ? WHERE i = ?");
    const start = time.monotonic();
    for (let i: i64 = 1; i <= n; i++) {
      if (!ins.bindText(1, value(i, size)).run()) return fail(db.error);
      const id = db.lastInsertRowid();
      if (id > 1 && !upd.bindText(1, value(id / 2, size)).bindInt(2, id / 2).run()) return fail(db.error);
    }
    const ns = time.monotonic() - start;
    // Each statement is one transaction: two commits per iteration (one for the first).
    const commits = 2 * n - 1;
    const tw = blocksum.tableWrites - t0, tf = blocksum.tableFlushes - tf0, tr = blocksum.tableReads - tr0 + blocksum.preReads - p0;
    console.log("sqlvfs: " + commits.toString() + " commits of " + size.toString() + "-byte rows: per commit " +
      hundredths(vfs.writes - w0 + tw, commits) + " writes (" + hundredths(tw, commits) + " of checksums), " + hundredths(vfs.barriers - b0, commits) + " barriers, " +
      hundredths(vfs.flushes - f0 + tf, commits) + " flushes (" + hundredths(tf, commits) + " for checksums), " + hundredths(vfs.reads - r0 + tr, commits) + " reads (" +
      hundredths(tr, commits) + " for checksums)");
    console.log("bench: commit_us " + hundredths(ns / 1000, commits) + " us");
    console.log("bench: commit_writes " + hundredths(vfs.writes - w0 + tw, commits) + " req");
    console.log("bench: commit_flushes " + hundredths(vfs.flushes - f0 + tf, commits) + " req");
    console.log("bench: commit_barriers " + hundredths(vfs.barriers - b0, commits) + " req");
    console.log("bench: commit_reads " + hundredths(vfs.reads - r0 + tr, commits) + " req");
  } else if (mode == "read") {
    const start = time.monotonic();
    const q = db.statement("SELECT i, v FROM t ORDER BY i");
    let n: i64 = 0;
    let sum: u32 = 0;
    while (q.step()) {
      const i = q.columnInt(0);
      const v = q.columnText(1);
      if (v != value(i, v.length)) return fail("row " + i.toString() + " holds the wrong value");
      for (let k = 0; k < v.length; k++) sum = sum * 31 + <u32>v.charCodeAt(k);
      n++;
    }
    if (q.failed) return fail(db.error);
    q.finalize();
    console.log("sqlvfs: " + n.toString() + " rows, checksum " + sum.toString());
    console.log("bench: read_us " + hundredths((time.monotonic() - start) / 1000, 1) + " us");
  } else return fail("usage: sqlvfs write <rows> <size> | read | open");
  if (!db.close()) return fail(db.error);
  console.log("TEST PASS");
}

main();
