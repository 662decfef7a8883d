// sqlstress: the SQL stress test of the Mirage paper's Figure 3. For each record size,
// a fresh table gets one transaction per iteration — an insert, an update or a
// delete of a record of that size — and after every commit the whole table is read
// back and every value compared with the model. The same workload, step for step,
// is tools/bench/linux/sqlstress.c (native SQLite on ext4 in a Linux domU): both
// print the same checksums, so the two runs are checked against each other.
//
//   sqlstress <iterations> <size>[,<size>...] [seed]
//
// Prints, per size: "sqlstress: size <S> iterations <N> live <L> checksum <X> ms <T>",
// then "TEST PASS", or "FAIL: <why>" at the first difference.
//
// The workload (mirror it exactly in sqlstress.c):
//   rng = xorshift32((seed ^ S) | 1) (x ^= x << 13; x ^= x >> 17; x ^= x << 5; on u32)
//   cap = clamp(1 MiB / S, 4, 64) live records
//   each iteration, one transaction (autocommit): r = next() % 4: 0 or 1 insert,
//   2 update, 3 delete; with no live record it is an insert, at the cap an insert
//   becomes a delete. Insert: key = ++lastKey, version 0, appended to the model.
//   Update/delete: the record at index next() % live of the model (in key order);
//   update bumps its version. A record's bytes: xorshift32 words seeded with
//   (u32)(key * 2654435761 + version * 40503) ^ S (0 → 1), stored little-endian,
//   cut to S bytes. After each commit: SELECT k, v FROM kv ORDER BY k equals the model.
//   checksum = FNV-1a (32-bit) over (u32 key, u32 version) of each live record, in order.
import { block, boot, console, sched, sqlite, time } from "../../runtime";
import { Xorshift32 } from "../../runtime/testing";

let scratch = new ArrayBuffer(0);

function fill(key: i64, version: u32, size: i32): ArrayBuffer {
  if (scratch.byteLength < size + 4) scratch = new ArrayBuffer(size + 4);
  const r = Xorshift32.exact((<u32>key * 2654435761 + version * 40503) ^ <u32>size);
  const p = changetype<usize>(scratch);
  for (let i = 0; i < size; i += 4) store<u32>(p + <usize>i, r.next());
  return scratch;
}

function fail(why: string): void {
  console.log("FAIL: " + why);
}

function runSize(db: sqlite.Database, size: i32, iterations: i32, seed: u32): bool {
  if (!db.exec("DROP TABLE IF EXISTS kv; CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")) {
    fail(db.error);
    return false;
  }
  const cap = <i32>max(4, min(64, (1 << 20) / size));
  const rng = new Xorshift32(seed ^ <u32>size);
  const keys = new Array<i64>();
  const versions = new Array<u32>();
  let lastKey: i64 = 0;
  const ins = db.statement("INSERT INTO kv (k, v) VALUES (?, ?)");
  const upd = db.statement("UPDATE kv SET v = ? WHERE k = ?");
  const del = db.statement("DELETE FROM kv WHERE k = ?");
  const all = db.statement("SELECT k, v FROM kv ORDER BY k");
  const t0 = time.monotonic();
  for (let it = 0; it < iterations; it++) {
    const r = rng.next() % 4;
    let op = r <= 1 ? 0 : r - 1; // 0 insert, 1 update, 2 delete
    if (keys.length == 0) op = 0;
    else if (keys.length >= cap && op == 0) op = 2;
    let ok = true;
    if (op == 0) {
      const k = ++lastKey;
      const b = fill(k, 0, size);
      ok = ins.bindInt(1, k).bindBlob(2, b.slice(0, size)).run();
      keys.push(k);
      versions.push(0);
    } else {
      const i = <i32>(rng.next() % <u32>keys.length);
      if (op == 1) {
        const v = versions[i] + 1;
        versions[i] = v;
        ok = upd.bindBlob(1, fill(keys[i], v, size).slice(0, size)).bindInt(2, keys[i]).run();
      } else {
        ok = del.bindInt(1, keys[i]).run();
        keys.splice(i, 1);
        versions.splice(i, 1);
      }
    }
    if (!ok) {
      fail("size " + size.toString() + " iteration " + it.toString() + ": " + db.error);
      return false;
    }
    // Read everything back and compare with the model.
    let n = 0;
    while (all.step()) {
      if (n >= keys.length || all.columnInt(0) != keys[n]) {
        fail("size " + size.toString() + " iteration " + it.toString() + ": unexpected key " + all.columnInt(0).toString());
        return false;
      }
      const got = all.columnBlob(1);
      const want = fill(keys[n], versions[n], size);
      if (got.byteLength != size || memory.compare(changetype<usize>(got), changetype<usize>(want), <usize>size) != 0) {
        fail("size " + size.toString() + " iteration " + it.toString() + ": record " + keys[n].toString() + " differs");
        return false;
      }
      n++;
    }
    all.reset();
    if (n != keys.length) {
      fail("size " + size.toString() + " iteration " + it.toString() + ": " + n.toString() + " records, want " + keys.length.toString());
      return false;
    }
  }
  const ms = (time.monotonic() - t0) / time.NS_PER_MS;
  let h: u32 = 2166136261;
  for (let i = 0; i < keys.length; i++) {
    h = (h ^ <u32>keys[i]) * 16777619;
    h = (h ^ versions[i]) * 16777619;
  }
  console.log("sqlstress: size " + size.toString() + " iterations " + iterations.toString() + " live " + keys.length.toString() +
    " checksum " + h.toString() + " ms " + ms.toString());
  ins.finalize();
  upd.finalize();
  del.finalize();
  all.finalize();
  return true;
}

function main(): void {
  const args = boot.args();
  if (args.length < 2) return fail("usage: sqlstress <iterations> <size>[,<size>...] [seed]");
  const iterations = I32.parseInt(args[0]);
  const sizes = args[1].split(",");
  const seed = args.length > 2 ? <u32>U32.parseInt(args[2]) : 42;
  const o = sched.wait(block.open());
  if (!o.ok) return fail(o.error);
  const db = sqlite.open(o.device!, "stress.db");
  if (!db.ok) return fail(db.error);
  const t0 = time.monotonic();
  for (let i = 0; i < sizes.length; i++) if (!runSize(db, I32.parseInt(sizes[i]), iterations, seed)) return;
  console.log("sqlstress: total ms " + ((time.monotonic() - t0) / time.NS_PER_MS).toString());
  if (!db.close()) return fail(db.error);
  console.log("TEST PASS");
}

main();
