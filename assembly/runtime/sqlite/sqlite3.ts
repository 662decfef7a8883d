// SQLite's C API as the native module exports it (module "native": sqlite/, built by
// tools/lib/sqlite.ts and native.ts). Declarations re-stated from sqlite3.h (SQLite 3.53); pointers
// are offsets in the linear memory both modules share. Use index.ts, not these.

@external("native", "morgana_sqlite_init") export declare function init(heap: usize, bytes: i32): i32;
@external("native", "morgana_sqlite_db_config_defensive") export declare function db_config_defensive(db: usize, on: i32): i32;
@external("native", "morgana_sqlite_memory_used") export declare function memory_used(): i64;
@external("native", "morgana_sqlite_memory_highwater") export declare function memory_highwater(): i64;
@external("native", "sqlite3_libversion") export declare function libversion(): usize;
@external("native", "sqlite3_sourceid") export declare function sourceid(): usize;
@external("native", "sqlite3_open_v2") export declare function open_v2(filename: usize, ppDb: usize, flags: i32, zVfs: usize): i32;
@external("native", "sqlite3_close_v2") export declare function close_v2(db: usize): i32;
@external("native", "sqlite3_exec") export declare function exec(db: usize, sql: usize, callback: usize, arg: usize, errmsg: usize): i32;
@external("native", "sqlite3_prepare_v2") export declare function prepare_v2(db: usize, sql: usize, nByte: i32, ppStmt: usize, pzTail: usize): i32;
@external("native", "sqlite3_step") export declare function step(stmt: usize): i32;
@external("native", "sqlite3_reset") export declare function reset(stmt: usize): i32;
@external("native", "sqlite3_finalize") export declare function finalize(stmt: usize): i32;
@external("native", "sqlite3_clear_bindings") export declare function clear_bindings(stmt: usize): i32;
@external("native", "sqlite3_bind_int64") export declare function bind_int64(stmt: usize, i: i32, v: i64): i32;
@external("native", "sqlite3_bind_double") export declare function bind_double(stmt: usize, i: i32, v: f64): i32;
@external("native", "sqlite3_bind_text") export declare function bind_text(stmt: usize, i: i32, text: usize, n: i32, destructor: isize): i32;
@external("native", "sqlite3_bind_blob") export declare function bind_blob(stmt: usize, i: i32, data: usize, n: i32, destructor: isize): i32;
@external("native", "sqlite3_bind_null") export declare function bind_null(stmt: usize, i: i32): i32;
@external("native", "sqlite3_bind_parameter_count") export declare function bind_parameter_count(stmt: usize): i32;
@external("native", "sqlite3_column_count") export declare function column_count(stmt: usize): i32;
@external("native", "sqlite3_column_type") export declare function column_type(stmt: usize, i: i32): i32;
@external("native", "sqlite3_column_int64") export declare function column_int64(stmt: usize, i: i32): i64;
@external("native", "sqlite3_column_double") export declare function column_double(stmt: usize, i: i32): f64;
@external("native", "sqlite3_column_text") export declare function column_text(stmt: usize, i: i32): usize;
@external("native", "sqlite3_column_blob") export declare function column_blob(stmt: usize, i: i32): usize;
@external("native", "sqlite3_column_bytes") export declare function column_bytes(stmt: usize, i: i32): i32;
@external("native", "sqlite3_column_name") export declare function column_name(stmt: usize, i: i32): usize;
@external("native", "sqlite3_errmsg") export declare function errmsg(db: usize): usize;
@external("native", "sqlite3_errcode") export declare function errcode(db: usize): i32;
@external("native", "sqlite3_extended_errcode") export declare function extended_errcode(db: usize): i32;
@external("native", "sqlite3_errstr") export declare function errstr(rc: i32): usize;
@external("native", "sqlite3_changes") export declare function changes(db: usize): i32;
@external("native", "sqlite3_last_insert_rowid") export declare function last_insert_rowid(db: usize): i64;
@external("native", "sqlite3_get_autocommit") export declare function get_autocommit(db: usize): i32;
@external("native", "sqlite3_extended_result_codes") export declare function extended_result_codes(db: usize, on: i32): i32;

// Result codes (sqlite3.h "Result Codes", "Extended Result Codes").
export const OK = 0;
export const ERROR = 1;
export const INTERNAL = 2;
export const NOMEM = 7;
export const READONLY = 8;
export const IOERR = 10;
export const CORRUPT = 11;
export const NOTFOUND = 12;
export const FULL = 13;
export const CANTOPEN = 14;
export const CONSTRAINT = 19;
export const MISMATCH = 20;
export const MISUSE = 21;
export const NOTADB = 26;
export const ROW = 100;
export const DONE = 101;
export const IOERR_READ = IOERR | (1 << 8);
export const IOERR_SHORT_READ = IOERR | (2 << 8);
export const IOERR_WRITE = IOERR | (3 << 8);
export const IOERR_FSYNC = IOERR | (4 << 8);
export const IOERR_TRUNCATE = IOERR | (6 << 8);
export const IOERR_FSTAT = IOERR | (7 << 8);
export const IOERR_DELETE = IOERR | (10 << 8);
export const IOERR_NOMEM = IOERR | (12 << 8);
export const IOERR_ACCESS = IOERR | (13 << 8);
export const CANTOPEN_NOTEMPDIR = CANTOPEN | (1 << 8);

// sqlite3_open_v2 / xOpen flags (sqlite3.h "Flags For File Open Operations").
export const OPEN_READONLY = 0x00000001;
export const OPEN_READWRITE = 0x00000002;
export const OPEN_CREATE = 0x00000004;
export const OPEN_DELETEONCLOSE = 0x00000008;
export const OPEN_EXCLUSIVE = 0x00000010;
export const OPEN_MEMORY = 0x00000080;
export const OPEN_MAIN_DB = 0x00000100;
export const OPEN_TEMP_DB = 0x00000200;
export const OPEN_TRANSIENT_DB = 0x00000400;
export const OPEN_MAIN_JOURNAL = 0x00000800;
export const OPEN_TEMP_JOURNAL = 0x00001000;
export const OPEN_SUBJOURNAL = 0x00002000;
export const OPEN_SUPER_JOURNAL = 0x00004000;
export const OPEN_NOMUTEX = 0x00008000;
export const OPEN_EXRESCODE = 0x02000000;

// xAccess flags.
export const ACCESS_EXISTS = 0;
export const ACCESS_READWRITE = 1;

// xSync flags.
export const SYNC_NORMAL = 0x2;
export const SYNC_FULL = 0x3;
export const SYNC_DATAONLY = 0x10;

// xDeviceCharacteristics (sqlite3.h "Device Characteristics").
export const IOCAP_ATOMIC4K = 0x00000010;
export const IOCAP_SAFE_APPEND = 0x00000200;
export const IOCAP_SEQUENTIAL = 0x00000400;
export const IOCAP_UNDELETABLE_WHEN_OPEN = 0x00000800;
export const IOCAP_POWERSAFE_OVERWRITE = 0x00001000;

// Fundamental datatypes (sqlite3_column_type).
export const INTEGER = 1;
export const FLOAT = 2;
export const TEXT = 3;
export const BLOB = 4;
export const NULL = 5;

/** Destructor argument: SQLite copies the value before the bind call returns. */
export const TRANSIENT: isize = -1;
