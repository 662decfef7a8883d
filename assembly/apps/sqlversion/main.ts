// sqlversion: the smallest app that uses SQLite (app.json "native": ["sqlite"]). Talks to the
// SQLite module through its raw C API (runtime/sqlite/sqlite3.ts): prints the library's
// version and the result of SELECT 1+1 on an in-memory database; then what the host's
// entropy source (ABI §11 entropy_fill) gives: 16 bytes, or -38 (ENOSYS) without one.
import { console, exit } from "../../runtime";
import * as c from "../../runtime/sqlite/sqlite3";
import * as abi from "../../runtime/abi";

/** A NUL-terminated C string in linear memory, as a string. */
function cString(p: usize): string {
  let n: usize = 0;
  while (load<u8>(p + n) != 0) n++;
  return String.UTF8.decodeUnsafe(p, n);
}

function check(what: string, rc: i32): void {
  if (rc == c.OK) return;
  console.log(what + " failed: " + cString(c.errstr(rc)) + " (" + rc.toString() + ")");
  exit(1);
}

const HEAP: i32 = 1 << 20;
check("init", c.init(heap.alloc(<usize>HEAP), HEAP));
console.log("SQLite " + cString(c.libversion()));

const out = heap.alloc(8);
const name = String.UTF8.encode(":memory:", true);
check("open", c.open_v2(changetype<usize>(name), out, c.OPEN_READWRITE | c.OPEN_CREATE | c.OPEN_MEMORY, 0));
const db = load<usize>(out);

const sql = String.UTF8.encode("SELECT 1+1", true);
check("prepare", c.prepare_v2(db, changetype<usize>(sql), -1, out, 0));
const stmt = load<usize>(out);
if (c.step(stmt) != c.ROW) { console.log("step: no row: " + cString(c.errmsg(db))); exit(1); }
console.log("SELECT 1+1 = " + c.column_int64(stmt, 0).toString());
check("finalize", c.finalize(stmt));
check("close", c.close_v2(db));

// 16 bytes, not all zero; or -ENOSYS where the platform has no entropy source.
const rnd = heap.alloc(16);
memory.fill(rnd, 0, 16);
const got = abi.entropy_fill(rnd, 16);
let zero = true;
for (let i: usize = 0; i < 16; i++) if (load<u8>(rnd + i) != 0) zero = false;
console.log("entropy_fill(16) = " + got.toString() + (got == 16 ? (zero ? " (all zero!)" : " (random)") : ""));
