// sqlcrash: a transactional workload whose every state can be checked, for power-loss
// tests of the SQLite VFS. Each run first checks what the disk holds, then commits
// more transactions:
//
//   sqlcrash <seed> <count> [errors][,big]
//
// prints "STATE <k> integrity ok" (k = transactions on disk, all checked) or
// "FAIL: ...", then "COMMIT <n>" as soon as each transaction's COMMIT returns, and
// "TEST PASS" at the end. A power cut may stop it anywhere; the next run must then
// find k >= the last COMMIT printed (durability) and the state of exactly k
// transactions (atomicity), and PRAGMA integrity_check must say ok.
//
// errors: the disk fails some requests (a hostile backend). A transaction that fails
// with an I/O error prints "ERROR <n>: <why>"; the app rolls back, checks the state it
// now sees (exactly k' whole transactions) and prints "RESUME <k'>", then goes on with
// k' + 1 (count attempts in all). An I/O error while checking prints "STOP: <why>" and
// ends the run ("TEST PASS: stopped by an I/O error"). Any other error, or a state that
// is not whole transactions, is a FAIL.
// big: every transaction also rewrites every 8th row of `wide` (400 rows of 900 B):
// about 50 scattered pages, so its write-back is many requests in flight together.
// plain: a blank disk is formatted without block checksums (layout version 1).
//
// Transaction n (deterministic from seed and n):
//   - log: insert row n with a blob of 16 B … 16 KiB; delete row n − 50
//   - hot: row n % 10 gets a fresh blob
//   - bulk: every 7th transaction replaces the batch with 24 rows of 3 KiB (spills pages)
//   - counter: count += 1, total += n
import { block, boot, console, sched, sqlite } from "../../runtime";
import * as vfs from "../../runtime/sqlite/vfs";
import { Xorshift32 } from "../../runtime/testing";

const KEEP: i64 = 50;
const HOT: i64 = 10;
const BULK_EVERY: i64 = 7;
const BULK_ROWS: i32 = 24;

let seed: u32 = 1;

function blob(n: i64, salt: u32, size: i32): ArrayBuffer {
  const r = new Xorshift32(seed * 2654435761 + <u32>n * 40503 + salt * 97);
  const b = new ArrayBuffer(size);
  for (let i = 0; i < size; i += 4) store<u32>(changetype<usize>(b) + <usize>i, r.next());
  return b;
}

function logBlob(n: i64): ArrayBuffer {
  const r = new Xorshift32(seed ^ (<u32>n * 7919));
  const sizes: i32[] = [16, 100, 512, 4096, 9000, 16384];
  return blob(n, 1, sizes[<i32>r.below(6)] - <i32>r.below(13) * 4 + 48);
}

function same(a: ArrayBuffer, b: ArrayBuffer): bool {
  return a.byteLength == b.byteLength && memory.compare(changetype<usize>(a), changetype<usize>(b), <usize>a.byteLength) == 0;
}

let db!: sqlite.Database;
/** errors mode: I/O errors are expected; the first one of the current step is kept here. */
let tolerant = false;
let big = false;
let ioError = "";

const WIDE_ROWS: i64 = 400;
const WIDE_EVERY: i64 = 8;

/** An I/O error (SQLITE_IOERR and its extended codes): expected in errors mode. */
function isIoError(code: i32): bool {
  return (code & 0xff) == 10;
}

/** False (and the error kept) on an expected I/O error; panics on any other failure. */
function must(ok: bool, what: string): bool {
  if (ok) return true;
  if (tolerant && isIoError(db.code)) {
    if (ioError.length == 0) ioError = what + ": " + db.error;
    return false;
  }
  db.fail(what);
  return false;
}

function query(sql: string): sqlite.Statement | null {
  const s = db.prepare(sql);
  if (s == null) must(false, "prepare");
  return s;
}

function scalar(sql: string): i64 {
  const s = query(sql);
  if (s == null) return -1;
  const v = s.step() ? s.columnInt(0) : -1;
  if (s.failed) must(false, sql);
  s.finalize();
  return v;
}

/** Checks the whole state against k transactions; "" when it matches. */
function verify(k: i64): string {
  if (scalar("SELECT total FROM counter") != (k * (k + 1)) / 2) return "counter.total is not the sum of 1.." + k.toString();
  // log: exactly rows max(1, k-49)..k, each with its blob.
  const lo = k - KEEP + 1 > 1 ? k - KEEP + 1 : 1;
  const want = k >= lo ? k - lo + 1 : 0;
  const q = query("SELECT n, v FROM log ORDER BY n");
  if (q == null) return "";
  let rows: i64 = 0;
  let next = lo;
  while (q.step()) {
    const n = q.columnInt(0);
    if (n != next) return "log row " + n.toString() + " where " + next.toString() + " was expected";
    if (!same(q.columnBlob(1), logBlob(n))) return "log row " + n.toString() + " has the wrong contents";
    next++;
    rows++;
  }
  const qf = q.failed;
  q.finalize();
  if (qf && !must(false, "reading log")) return "";
  if (rows != want) return "log has " + rows.toString() + " rows, want " + want.toString();
  // hot: row j holds the blob of the last n <= k with n % 10 == j.
  const h = query("SELECT id, n, v FROM hot ORDER BY id");
  if (h == null) return "";
  let hot = 0;
  while (h.step()) {
    const j = h.columnInt(0);
    const n = h.columnInt(1);
    const last = k - ((k - j) % HOT + HOT) % HOT;
    if (n != last || !same(h.columnBlob(2), blob(n, 2, 700))) return "hot row " + j.toString() + " is from transaction " + n.toString() + ", want " + last.toString();
    hot++;
  }
  const hf = h.failed;
  h.finalize();
  if (hf && !must(false, "reading hot")) return "";
  if (hot != <i32>min(k, HOT)) return "hot has " + hot.toString() + " rows";
  // bulk: the batch of the last multiple of 7 <= k.
  const b = (k / BULK_EVERY) * BULK_EVERY;
  const bq = query("SELECT n, i, v FROM bulk ORDER BY i");
  if (bq == null) return "";
  let bulk = 0;
  while (bq.step()) {
    if (bq.columnInt(0) != b || bq.columnInt(1) != bulk || !same(bq.columnBlob(2), blob(b, 100 + bulk, 3072)))
      return "bulk row " + bulk.toString() + " is not from transaction " + b.toString();
    bulk++;
  }
  const bf = bq.failed;
  bq.finalize();
  if (bf && !must(false, "reading bulk")) return "";
  if (bulk != (b > 0 ? BULK_ROWS : 0)) return "bulk has " + bulk.toString() + " rows";
  return big ? verifyWide(k) : "";
}

/** The transaction n <= k that last rewrote wide row id (0: the initial fill). */
function wideFrom(k: i64, id: i64): i64 {
  const j = id % WIDE_EVERY;
  if (k < j || j == 0 && k < WIDE_EVERY) return 0;
  return k - ((k - j) % WIDE_EVERY + WIDE_EVERY) % WIDE_EVERY;
}

function verifyWide(k: i64): string {
  const w = query("SELECT id, n, v FROM wide ORDER BY id");
  if (w == null) return "";
  let rows: i64 = 0;
  while (w.step()) {
    const id = w.columnInt(0);
    const n = w.columnInt(1);
    const want = wideFrom(k, id);
    if (id != rows || n != want || !same(w.columnBlob(2), blob(n, 300 + <u32>id, 900))) {
      w.finalize();
      return "wide row " + id.toString() + " is from transaction " + n.toString() + ", want " + want.toString();
    }
    rows++;
  }
  const wf = w.failed;
  w.finalize();
  if (wf && !must(false, "reading wide")) return "";
  if (rows != WIDE_ROWS) return "wide has " + rows.toString() + " rows";
  return "";
}

/** Runs transaction n; false on an (expected) I/O error, kept in ioError. */
function transaction(n: i64): bool {
  if (!must(db.begin(), "BEGIN")) return false;
  if (!must(db.cached("INSERT INTO log (n, v) VALUES (?, ?)").bindInt(1, n).bindBlob(2, logBlob(n)).run(), "insert log")) return false;
  if (!must(db.cached("DELETE FROM log WHERE n = ?").bindInt(1, n - KEEP).run(), "delete log")) return false;
  if (!must(db.cached("INSERT OR REPLACE INTO hot (id, n, v) VALUES (?, ?, ?)").bindInt(1, n % HOT).bindInt(2, n).bindBlob(3, blob(n, 2, 700)).run(), "hot")) return false;
  if (n % BULK_EVERY == 0) {
    if (!must(db.exec("DELETE FROM bulk"), "clear bulk")) return false;
    const ins = db.cached("INSERT INTO bulk (n, i, v) VALUES (?, ?, ?)");
    for (let i = 0; i < BULK_ROWS; i++) if (!must(ins.bindInt(1, n).bindInt(2, i).bindBlob(3, blob(n, 100 + i, 3072)).run(), "bulk")) return false;
  }
  if (big) {
    const up = db.cached("UPDATE wide SET n = ?, v = ? WHERE id = ?");
    for (let id = n % WIDE_EVERY; id < WIDE_ROWS; id += WIDE_EVERY)
      if (!must(up.bindInt(1, n).bindBlob(2, blob(n, 300 + <u32>id, 900)).bindInt(3, id).run(), "wide")) return false;
  }
  if (!must(db.cached("UPDATE counter SET count = count + 1, total = total + ?").bindInt(1, n).run(), "counter")) return false;
  return must(db.commit(), "COMMIT " + n.toString());
}

/** Fills wide once (its own transaction): row id from "transaction 0". */
function fillWide(): bool {
  const have = scalar("SELECT count(*) FROM wide");
  if (have < 0 || have == WIDE_ROWS) return have == WIDE_ROWS;
  if (!must(db.begin(), "BEGIN")) return false;
  if (!must(db.exec("DELETE FROM wide"), "clear wide")) return false;
  const ins = db.cached("INSERT INTO wide (id, n, v) VALUES (?, 0, ?)");
  for (let id: i64 = 0; id < WIDE_ROWS; id++) if (!must(ins.bindInt(1, id).bindBlob(2, blob(0, 300 + <u32>id, 900)).run(), "fill wide")) return false;
  return must(db.commit(), "COMMIT wide");
}

/** After an I/O error: roll back what is left, then the state seen must be whole transactions. Returns k', or -1 (stop). */
function recover(): i64 {
  if (!db.autocommit) db.rollback(); // may fail too: SQLite then rolls back from the journal at the next read
  ioError = "";
  const k = scalar("SELECT count FROM counter");
  if (ioError.length > 0) return -1;
  const bad = verify(k);
  if (ioError.length > 0) return -1;
  if (bad.length > 0) {
    console.log("FAIL: after an I/O error, the state of " + k.toString() + " transactions: " + bad);
    return -2;
  }
  return k;
}

function main(): void {
  const args = boot.args();
  if (args.length < 2) return console.log("FAIL: usage: sqlcrash <seed> <count>");
  seed = <u32>U64.parseInt(args[0]);
  const count = I64.parseInt(args[1]);
  const mode = args.length > 2 ? args[2] : "";
  tolerant = mode.includes("errors");
  big = mode.includes("big");
  if (mode.includes("plain")) vfs.setFormatChecksums(false); // a blank disk gets layout version 1 (no block checksums)
  const o = sched.wait(block.open());
  if (!o.ok) return console.log("FAIL: " + o.error);
  db = sqlite.open(o.device!, "crash.db");
  if (!db.ok) {
    // The superblock read failing is reported by the VFS itself (no SQLite code).
    if (tolerant && (isIoError(db.code) || db.error.includes("BLKIF_RSP_ERROR"))) return stop("opening: " + db.error);
    return console.log("FAIL: " + db.error);
  }
  if (!must(db.exec(
    "CREATE TABLE IF NOT EXISTS log (n INTEGER PRIMARY KEY, v BLOB NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS hot (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, v BLOB NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS bulk (n INTEGER NOT NULL, i INTEGER PRIMARY KEY, v BLOB NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS counter (count INTEGER NOT NULL, total INTEGER NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS wide (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, v BLOB NOT NULL);" +
    "INSERT INTO counter SELECT 0, 0 WHERE NOT EXISTS (SELECT 1 FROM counter)"), "schema")) return stop(ioError);
  if (big && !fillWide()) return stop(ioError);
  const integrity = integrityCheck();
  if (ioError.length > 0) return stop(ioError);
  if (integrity != "ok") return console.log("FAIL: integrity_check: " + integrity);
  const k = scalar("SELECT count FROM counter");
  if (ioError.length > 0) return stop(ioError);
  const bad = verify(k);
  if (ioError.length > 0) return stop(ioError);
  if (bad.length > 0) return console.log("FAIL: state of " + k.toString() + " transactions: " + bad);
  console.log("STATE " + k.toString() + " integrity ok");
  let n = k + 1;
  for (let attempt: i64 = 0; attempt < count; attempt++) {
    ioError = "";
    if (transaction(n)) {
      console.log("COMMIT " + n.toString());
      n++;
      continue;
    }
    console.log("ERROR " + n.toString() + ": " + ioError);
    const now = recover();
    if (now == -2) return;
    if (now < 0) return stop(ioError);
    console.log("RESUME " + now.toString());
    n = now + 1;
  }
  const again = verify(n - 1);
  if (ioError.length > 0) return stop(ioError);
  if (again.length > 0) return console.log("FAIL: after the run: " + again);
  if (!must(db.close(), "close")) return stop(ioError);
  console.log("TEST PASS");
}

/**
 * PRAGMA integrity_check's report. A page it cannot read is a line of the report, not a
 * failed statement: in errors mode a check during which a read failed (the VFS says so)
 * proves nothing, so it is redone (the injected errors are transient), at most 5 times.
 */
function integrityCheck(): string {
  for (let attempt = 0; ; attempt++) {
    vfs.takeLastError();
    const ic = query("PRAGMA integrity_check");
    if (ic == null) return "";
    let text = "";
    while (ic.step()) text += (text.length > 0 ? "\n" : "") + ic.columnText(0);
    const failed = ic.failed;
    ic.finalize();
    if (failed) {
      must(false, "integrity_check");
      return "";
    }
    const io = vfs.takeLastError();
    if (!tolerant || io.length == 0 || text == "ok") return text;
    if (attempt == 4) {
      ioError = "integrity_check could not read every page: " + io;
      return "";
    }
  }
  return ""; // not reached
}

/** errors mode: an I/O error where the app cannot go on; the run ends here, consistent. */
function stop(why: string): void {
  console.log("STOP: " + why);
  console.log("TEST PASS: stopped by an I/O error");
}

main();
