// SQLite in the unikernel: one database on one virtual disk, through the block-device
// VFS (vfs.ts), or in memory. Calls are synchronous: a statement that needs the disk
// runs the event loop until its I/O completes, so call the database from the top level
// (main code), never from a Task's step().
//
//   const o = sched.wait(block.open());
//   const db = sqlite.open(o.device!, "contacts.db");
//   if (!db.ok) panic(db.error);                  // foreign or corrupt disk, I/O error...
//   db.exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
//   const ins = db.prepare("INSERT INTO t VALUES (?)");
//   ins.bindInt(1, 42).run();
//   const q = db.prepare("SELECT count(*) FROM t");
//   if (q.step()) console.log(q.columnInt(0).toString());
//   q.finalize();
//
// Errors: a call that fails returns false (or null) and leaves the message in
// db.error ("INSERT INTO t ...: disk I/O error (vbd 51712: write of sector 8+8: ...)");
// db.fail(context) turns it into a panic for code that cannot go on. Values are
// always bound as parameters (bindText, bindInt, ...), never spliced into SQL.
import * as c from "./sqlite3";
import * as vfs from "./vfs";
import { Device } from "../block";
import { panic } from "../system";

/** Bytes of the static heap SQLite runs in (memsys5), taken once from the AssemblyScript heap. */
export let heapBytes: i32 = 8 << 20;
let initialised = false;
let initError = "";

function initialise(): string {
  if (initialised) return initError;
  initialised = true;
  const mem = heap.alloc(<usize>heapBytes);
  const rc = c.init(mem, heapBytes);
  if (rc != c.OK) initError = "sqlite: initialisation failed: " + errstr(rc) + " (heap of " + heapBytes.toString() + " bytes)";
  return initError;
}

/** SQLite's version ("3.53.2"). */
export function version(): string {
  initialise();
  return cString(c.libversion());
}

/** Bytes of SQLite's heap in use, and the most ever used. */
export function memoryUsed(): i64 {
  return c.memory_used();
}
export function memoryHighwater(): i64 {
  return c.memory_highwater();
}

/**
 * Opens (creating when the disk is blank) the database on a virtual disk. The disk
 * holds exactly one database and its rollback journal (vfs.ts draws the layout);
 * a disk holding something else is refused, never overwritten. Check db.ok.
 */
export function open(dev: Device, name: string = "main.db"): Database {
  const db = new Database(name);
  const e = initialise();
  if (e.length > 0) return db.failWith(e);
  const m = vfs.mount(dev, name);
  if (m.length > 0) return db.failWith(m);
  db.onDisk = true;
  db.connect(c.OPEN_READWRITE | c.OPEN_CREATE);
  if (!db.ok) {
    // Leave nothing half open: the disk may be retried (or another one opened).
    if (db.handle != 0) c.close_v2(db.handle);
    db.handle = 0;
    vfs.unmount();
  }
  return db;
}

/** A database in memory only: gone at shutdown. For tests and scratch data. */
export function openMemory(): Database {
  const db = new Database(":memory:");
  const e = initialise();
  if (e.length > 0) return db.failWith(e);
  return db.connect(c.OPEN_READWRITE | c.OPEN_CREATE | c.OPEN_MEMORY);
}

export class Database {
  /** The last error's message; "" when the last call succeeded. */
  error: string = "";
  /** The SQLite result code of the last error (extended), 0 when none. */
  code: i32 = 0;
  handle: usize = 0;
  /** On a virtual disk (sqlite.open), not in memory. */
  onDisk: bool = false;
  private statements: Array<Statement> = new Array<Statement>();
  private cache: Map<string, Statement> = new Map<string, Statement>();

  constructor(public name: string) {}

  get ok(): bool {
    return this.error.length == 0;
  }

  failWith(message: string): Database {
    this.error = message;
    return this;
  }

  connect(flags: i32): Database {
    const cname = String.UTF8.encode(this.name, true);
    const cvfs = String.UTF8.encode("morgana", true);
    const out = memory.data(8);
    store<usize>(out, 0);
    const rc = c.open_v2(changetype<usize>(cname), out, flags | c.OPEN_EXRESCODE, changetype<usize>(cvfs));
    this.handle = load<usize>(out);
    if (rc != c.OK) {
      this.record("opening " + this.name, rc);
      if (this.handle != 0) c.close_v2(this.handle);
      this.handle = 0;
      return this;
    }
    c.extended_result_codes(this.handle, 1);
    c.db_config_defensive(this.handle, 1);
    // Every page checked as it is read (a hostile disk), full syncs (the VFS makes each one
    // durable: a flush, or barrier + flush when a size changed), 4 KiB pages = the VFS block;
    // exclusive locking and no WAL are compiled in.
    // Reading the schema (the first read of the file) fails here for a non-SQLite file.
    this.exec("PRAGMA cell_size_check=ON; PRAGMA synchronous=FULL; PRAGMA journal_mode=DELETE; PRAGMA page_size=4096;" +
      "SELECT count(*) FROM sqlite_schema", "opening " + this.name);
    return this;
  }

  /** Runs SQL (one or more statements) that returns no rows; errors name `context` (default: the SQL). */
  exec(sql: string, context: string = ""): bool {
    if (this.handle == 0) return this.closedError();
    const csql = String.UTF8.encode(sql, true);
    const rc = c.exec(this.handle, changetype<usize>(csql), 0, 0, 0);
    if (rc != c.OK) return this.record(context.length > 0 ? context : sql, rc);
    this.error = "";
    this.code = 0;
    return true;
  }

  /** Compiles one statement; null on error (see error). */
  prepare(sql: string): Statement | null {
    if (this.handle == 0) {
      this.closedError();
      return null;
    }
    const csql = String.UTF8.encode(sql, true);
    const out = memory.data(8);
    store<usize>(out, 0);
    const rc = c.prepare_v2(this.handle, changetype<usize>(csql), -1, out, 0);
    const h = load<usize>(out);
    if (rc != c.OK || h == 0) {
      if (h != 0) c.finalize(h);
      this.record(sql, rc != c.OK ? rc : c.MISUSE);
      if (rc == c.OK) this.error = sql + ": no statement in the SQL";
      return null;
    }
    this.error = "";
    this.code = 0;
    const s = new Statement(this, h, sql);
    this.statements.push(s);
    return s;
  }

  /** prepare(), or a panic naming the SQL and the error: for SQL fixed at compile time. */
  statement(sql: string): Statement {
    const s = this.prepare(sql);
    if (s == null) this.fail("prepare");
    return s!;
  }

  /**
   * The statement for sql, prepared on first use and kept until close(); reset (and its
   * bindings cleared) each time it is handed out. Panics when the SQL does not compile.
   */
  cached(sql: string): Statement {
    if (this.cache.has(sql)) {
      const s = this.cache.get(sql);
      if (s.handle != 0) return s.reset();
    }
    const s = this.statement(sql);
    this.cache.set(sql, s);
    return s;
  }

  begin(): bool {
    return this.exec("BEGIN");
  }
  commit(): bool {
    return this.exec("COMMIT");
  }
  rollback(): bool {
    return this.exec("ROLLBACK");
  }

  /** True outside an explicit transaction. */
  get autocommit(): bool {
    return this.handle != 0 && c.get_autocommit(this.handle) != 0;
  }

  /** Rows changed by the last INSERT, UPDATE or DELETE. */
  changes(): i32 {
    return this.handle == 0 ? 0 : c.changes(this.handle);
  }

  lastInsertRowid(): i64 {
    return this.handle == 0 ? 0 : c.last_insert_rowid(this.handle);
  }

  /** Finalizes every statement still open and closes the connection. */
  close(): bool {
    if (this.handle == 0) return true;
    for (let i = 0; i < this.statements.length; i++) this.statements[i].finalize();
    this.statements.length = 0;
    this.cache.clear();
    const rc = c.close_v2(this.handle);
    this.handle = 0;
    if (this.onDisk) vfs.unmount();
    if (rc != c.OK) return this.record("closing " + this.name, rc);
    return true;
  }

  /** Ends the unikernel with the last error, prefixed by context. */
  fail(context: string): void {
    panic("sqlite: " + this.name + ": " + context + ": " + (this.error.length > 0 ? this.error : "unknown error"));
  }

  /** Records a failed call: the SQL (or context), SQLite's message, and the disk's own reason. */
  record(context: string, rc: i32): bool {
    let msg = this.handle != 0 ? cString(c.errmsg(this.handle)) : errstr(rc);
    const io = vfs.takeLastError();
    if (io.length > 0) msg += " (" + io + ")";
    this.error = (context.length > 120 ? context.slice(0, 117) + "..." : context) + ": " + msg;
    this.code = rc;
    return false;
  }

  forget(s: Statement): void {
    const i = this.statements.indexOf(s);
    if (i >= 0) this.statements.splice(i, 1);
  }

  private closedError(): bool {
    this.error = this.name + ": the database is not open";
    this.code = c.MISUSE;
    return false;
  }
}

/** A compiled statement: bind parameters (1-based), step through rows (columns 0-based). */
export class Statement {
  /** True once a step failed; the message is in db.error. */
  failed: bool = false;
  constructor(
    public db: Database,
    public handle: usize,
    public sql: string,
  ) {}

  bindInt(i: i32, v: i64): Statement {
    this.check(c.bind_int64(this.live(), i, v), i);
    return this;
  }
  bindFloat(i: i32, v: f64): Statement {
    this.check(c.bind_double(this.live(), i, v), i);
    return this;
  }
  bindBool(i: i32, v: bool): Statement {
    return this.bindInt(i, v ? 1 : 0);
  }
  bindText(i: i32, v: string): Statement {
    const b = String.UTF8.encode(v, false);
    // TRANSIENT: SQLite copies the bytes before returning, so the GC may move on.
    this.check(c.bind_text(this.live(), i, changetype<usize>(b), b.byteLength, c.TRANSIENT), i);
    return this;
  }
  bindNull(i: i32): Statement {
    this.check(c.bind_null(this.live(), i), i);
    return this;
  }
  /** bindText, or NULL for null. */
  bindTextOrNull(i: i32, v: string | null): Statement {
    return v == null ? this.bindNull(i) : this.bindText(i, v);
  }
  bindBlob(i: i32, v: ArrayBuffer): Statement {
    this.check(c.bind_blob(this.live(), i, changetype<usize>(v), v.byteLength, c.TRANSIENT), i);
    return this;
  }
  parameterCount(): i32 {
    return c.bind_parameter_count(this.live());
  }

  /** Advances: true when a row is ready; false when done or failed (see failed, db.error). */
  step(): bool {
    if (this.failed) return false;
    const rc = c.step(this.live());
    if (rc == c.ROW) return true;
    if (rc == c.DONE) return false;
    this.failed = true;
    this.db.record(this.sql, rc);
    return false;
  }

  /** Steps to the end (for INSERT, UPDATE, DELETE), then resets; true when it succeeded. */
  run(): bool {
    while (this.step()) {}
    const ok = !this.failed;
    this.reset();
    return ok;
  }

  /** Ready to run again with new bindings (old ones cleared). */
  reset(): Statement {
    const h = this.live();
    c.reset(h);
    c.clear_bindings(h);
    this.failed = false;
    return this;
  }

  columnCount(): i32 {
    return c.column_count(this.live());
  }
  columnName(i: i32): string {
    return cString(c.column_name(this.live(), i));
  }
  /** sqlite3.ts INTEGER, FLOAT, TEXT, BLOB or NULL. */
  columnType(i: i32): i32 {
    return c.column_type(this.live(), i);
  }
  isNull(i: i32): bool {
    return this.columnType(i) == c.NULL;
  }
  columnInt(i: i32): i64 {
    return c.column_int64(this.live(), i);
  }
  columnFloat(i: i32): f64 {
    return c.column_double(this.live(), i);
  }
  columnBool(i: i32): bool {
    return this.columnInt(i) != 0;
  }
  columnText(i: i32): string {
    const h = this.live();
    const p = c.column_text(h, i); // before column_bytes: SQLite's documented order
    const n = c.column_bytes(h, i);
    return p == 0 ? "" : String.UTF8.decodeUnsafe(p, <usize>n);
  }
  /** columnText, or null for NULL. */
  columnTextOrNull(i: i32): string | null {
    return this.isNull(i) ? null : this.columnText(i);
  }
  columnBlob(i: i32): ArrayBuffer {
    const h = this.live();
    const p = c.column_blob(h, i);
    const n = c.column_bytes(h, i);
    const out = new ArrayBuffer(n);
    if (n > 0) memory.copy(changetype<usize>(out), p, <usize>n);
    return out;
  }

  finalize(): void {
    if (this.handle == 0) return;
    c.finalize(this.handle);
    this.handle = 0;
    this.db.forget(this);
  }

  private live(): usize {
    if (this.handle == 0) panic("sqlite: statement used after finalize(): " + this.sql);
    return this.handle;
  }

  private check(rc: i32, i: i32): void {
    if (rc == c.OK) return;
    this.failed = true;
    this.db.record(this.sql + " (parameter " + i.toString() + ")", rc);
  }
}

/** SQLite's English text for a result code. */
export function errstr(rc: i32): string {
  return cString(c.errstr(rc)) + " (code " + rc.toString() + ")";
}

/** A NUL-terminated UTF-8 string in linear memory. */
export function cString(p: usize): string {
  if (p == 0) return "";
  let n: usize = 0;
  while (load<u8>(p + n) != 0) n++;
  return String.UTF8.decodeUnsafe(p, n);
}

export { Device };
