// sqlcrash: a transactional workload whose every state can be checked, for power-loss
// tests of the SQLite VFS. Each run first checks what the disk holds, then commits
// more transactions:
//
//   sqlcrash <seed> <count>
//
// prints "STATE <k> integrity ok" (k = transactions on disk, all checked) or
// "FAIL: ...", then "COMMIT <n>" as soon as each transaction's COMMIT returns, and
// "TEST PASS" at the end. A power cut may stop it anywhere; the next run must then
// find k >= the last COMMIT printed (durability) and the state of exactly k
// transactions (atomicity), and PRAGMA integrity_check must say ok.
//
// Transaction n (deterministic from seed and n):
//   - log: insert row n with a blob of 16 B … 16 KiB; delete row n − 50
//   - hot: row n % 10 gets a fresh blob
//   - bulk: every 7th transaction replaces the batch with 24 rows of 3 KiB (spills pages)
//   - counter: count += 1, total += n
import { block, boot, console, sched, sqlite } from "../../runtime";
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

function must(ok: bool, what: string): void {
  if (!ok) db.fail(what);
}

function scalar(sql: string): i64 {
  const s = db.statement(sql);
  const v = s.step() ? s.columnInt(0) : -1;
  if (s.failed) db.fail(sql);
  s.finalize();
  return v;
}

/** Checks the whole state against k transactions; "" when it matches. */
function verify(k: i64): string {
  if (scalar("SELECT total FROM counter") != (k * (k + 1)) / 2) return "counter.total is not the sum of 1.." + k.toString();
  // log: exactly rows max(1, k-49)..k, each with its blob.
  const lo = k - KEEP + 1 > 1 ? k - KEEP + 1 : 1;
  const want = k >= lo ? k - lo + 1 : 0;
  const q = db.statement("SELECT n, v FROM log ORDER BY n");
  let rows: i64 = 0;
  let next = lo;
  while (q.step()) {
    const n = q.columnInt(0);
    if (n != next) return "log row " + n.toString() + " where " + next.toString() + " was expected";
    if (!same(q.columnBlob(1), logBlob(n))) return "log row " + n.toString() + " has the wrong contents";
    next++;
    rows++;
  }
  if (q.failed) db.fail("reading log");
  q.finalize();
  if (rows != want) return "log has " + rows.toString() + " rows, want " + want.toString();
  // hot: row j holds the blob of the last n <= k with n % 10 == j.
  const h = db.statement("SELECT id, n, v FROM hot ORDER BY id");
  let hot = 0;
  while (h.step()) {
    const j = h.columnInt(0);
    const n = h.columnInt(1);
    const last = k - ((k - j) % HOT + HOT) % HOT;
    if (n != last || !same(h.columnBlob(2), blob(n, 2, 700))) return "hot row " + j.toString() + " is from transaction " + n.toString() + ", want " + last.toString();
    hot++;
  }
  h.finalize();
  if (hot != <i32>min(k, HOT)) return "hot has " + hot.toString() + " rows";
  // bulk: the batch of the last multiple of 7 <= k.
  const b = (k / BULK_EVERY) * BULK_EVERY;
  const bq = db.statement("SELECT n, i, v FROM bulk ORDER BY i");
  let bulk = 0;
  while (bq.step()) {
    if (bq.columnInt(0) != b || bq.columnInt(1) != bulk || !same(bq.columnBlob(2), blob(b, 100 + bulk, 3072)))
      return "bulk row " + bulk.toString() + " is not from transaction " + b.toString();
    bulk++;
  }
  bq.finalize();
  if (bulk != (b > 0 ? BULK_ROWS : 0)) return "bulk has " + bulk.toString() + " rows";
  return "";
}

function transaction(n: i64): void {
  must(db.begin(), "BEGIN");
  must(db.cached("INSERT INTO log (n, v) VALUES (?, ?)").bindInt(1, n).bindBlob(2, logBlob(n)).run(), "insert log");
  must(db.cached("DELETE FROM log WHERE n = ?").bindInt(1, n - KEEP).run(), "delete log");
  must(db.cached("INSERT OR REPLACE INTO hot (id, n, v) VALUES (?, ?, ?)").bindInt(1, n % HOT).bindInt(2, n).bindBlob(3, blob(n, 2, 700)).run(), "hot");
  if (n % BULK_EVERY == 0) {
    must(db.exec("DELETE FROM bulk"), "clear bulk");
    const ins = db.cached("INSERT INTO bulk (n, i, v) VALUES (?, ?, ?)");
    for (let i = 0; i < BULK_ROWS; i++) must(ins.bindInt(1, n).bindInt(2, i).bindBlob(3, blob(n, 100 + i, 3072)).run(), "bulk");
  }
  must(db.cached("UPDATE counter SET count = count + 1, total = total + ?").bindInt(1, n).run(), "counter");
  must(db.commit(), "COMMIT " + n.toString());
}

function main(): void {
  const args = boot.args();
  if (args.length < 2) return console.log("FAIL: usage: sqlcrash <seed> <count>");
  seed = <u32>U64.parseInt(args[0]);
  const count = I64.parseInt(args[1]);
  const o = sched.wait(block.open());
  if (!o.ok) return console.log("FAIL: " + o.error);
  db = sqlite.open(o.device!, "crash.db");
  if (!db.ok) return console.log("FAIL: " + db.error);
  must(db.exec(
    "CREATE TABLE IF NOT EXISTS log (n INTEGER PRIMARY KEY, v BLOB NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS hot (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, v BLOB NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS bulk (n INTEGER NOT NULL, i INTEGER PRIMARY KEY, v BLOB NOT NULL);" +
    "CREATE TABLE IF NOT EXISTS counter (count INTEGER NOT NULL, total INTEGER NOT NULL);" +
    "INSERT INTO counter SELECT 0, 0 WHERE NOT EXISTS (SELECT 1 FROM counter)"), "schema");
  const ic = db.statement("PRAGMA integrity_check");
  const integrity = ic.step() ? ic.columnText(0) : db.error;
  ic.finalize();
  if (integrity != "ok") return console.log("FAIL: integrity_check: " + integrity);
  const k = scalar("SELECT count FROM counter");
  const bad = verify(k);
  if (bad.length > 0) return console.log("FAIL: state of " + k.toString() + " transactions: " + bad);
  console.log("STATE " + k.toString() + " integrity ok");
  for (let n = k + 1; n <= k + count; n++) {
    transaction(n);
    console.log("COMMIT " + n.toString());
  }
  const again = verify(k + count);
  if (again.length > 0) return console.log("FAIL: after the run: " + again);
  must(db.close(), "close");
  console.log("TEST PASS");
}

main();
