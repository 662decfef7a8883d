// sqlvfs: drives the SQLite VFS for the harness and test-bed tests.
//
//   sqlvfs write <rows> <size>   one transaction inserting rows of size bytes; prints
//                                the VFS's requests for it
//   sqlvfs read                  prints the row count and a checksum of every value
//   sqlvfs open                  opens the database and prints "open ok"
//
// Each run prints "sqlvfs: <what happened>" lines, then exactly one result line:
// TEST PASS, or FAIL: <the error, as the runtime reports it>.
import { block, boot, console, sched, sqlite } from "../../runtime";
import * as vfs from "../../runtime/sqlite/vfs";

function fail(why: string): void {
  console.log("FAIL: " + why);
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
  const args = boot.args();
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
    if (!db.begin()) return fail(db.error);
    const top = db.statement("SELECT ifnull(max(i), 0) FROM t");
    const base = top.step() ? top.columnInt(0) : 0;
    top.finalize();
    const ins = db.statement("INSERT INTO t (v) VALUES (?)");
    for (let i: i64 = 1; i <= rows; i++) if (!ins.bindText(1, value(base + i, size)).run()) return fail(db.error);
    if (!db.commit()) return fail(db.error);
    console.log("sqlvfs: wrote " + rows.toString() + " rows of " + size.toString() + " bytes in one transaction: " +
      (vfs.writes - w0).toString() + " write requests, " + (vfs.barriers - b0).toString() + " barriers, " +
      (vfs.flushes - f0).toString() + " flushes, " + (vfs.reads - r0).toString() + " reads");
  } else if (mode == "read") {
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
  } else return fail("usage: sqlvfs write <rows> <size> | read | open");
  if (!db.close()) return fail(db.error);
  console.log("TEST PASS");
}

main();
