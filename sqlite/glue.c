/* The SQLite module's side of the VFS: a sqlite3_vfs named "morgana" whose methods
 * forward to functions the AssemblyScript app exports (module "app", declared below;
 * implemented in assembly/runtime/sqlite/vfs.ts). The VFS itself — disk layout,
 * extents, journal, flush and barrier policy — lives in AssemblyScript; this file only
 * adapts SQLite's C function-pointer interface to wasm imports, plus start-up.
 *
 * Contract (sqlite/README.md has the full table): every imported function returns a
 * SQLite result code (SQLITE_OK = 0 or an SQLITE_IOERR_* / SQLITE_CANTOPEN / ... code);
 * pointers are offsets into the one shared linear memory; file ids are small integers
 * chosen by the app and passed back unchanged. */
#include "sqlite3.h"

#define IMPORT(name) __attribute__((import_module("app"), import_name("morgana_vfs_" #name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(open) int vfs_open(const char *name, int flags, int *out_flags);   /* >= 0: file id */
IMPORT(close) int vfs_close(int fid);
IMPORT(read) int vfs_read(int fid, void *buf, int amt, sqlite3_int64 off);
IMPORT(write) int vfs_write(int fid, const void *buf, int amt, sqlite3_int64 off);
IMPORT(truncate) int vfs_truncate(int fid, sqlite3_int64 size);
IMPORT(sync) int vfs_sync(int fid, int flags);
IMPORT(size) int vfs_size(int fid, sqlite3_int64 *out);
IMPORT(characteristics) int vfs_characteristics(int fid);
IMPORT(delete) int vfs_delete(const char *name, int sync_dir);
IMPORT(access) int vfs_access(const char *name, int flags, int *out);
IMPORT(randomness) int vfs_randomness(int n, char *out);
IMPORT(sleep) int vfs_sleep(int us);
IMPORT(time) sqlite3_int64 vfs_time(void);   /* Julian day number * 86400000 */

typedef struct {
    sqlite3_file base;
    int fid;
} morgana_file;

static int file_close(sqlite3_file *f) { return vfs_close(((morgana_file *)f)->fid); }
static int file_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return vfs_read(((morgana_file *)f)->fid, b, n, o); }
static int file_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) { return vfs_write(((morgana_file *)f)->fid, b, n, o); }
static int file_truncate(sqlite3_file *f, sqlite3_int64 s) { return vfs_truncate(((morgana_file *)f)->fid, s); }
static int file_sync(sqlite3_file *f, int flags) { return vfs_sync(((morgana_file *)f)->fid, flags); }
static int file_size(sqlite3_file *f, sqlite3_int64 *s) { return vfs_size(((morgana_file *)f)->fid, s); }
/* One process, one connection (SQLITE_THREADSAFE=0, exclusive locking): locks always succeed. */
static int file_lock(sqlite3_file *f, int l) { (void)f; (void)l; return SQLITE_OK; }
static int file_unlock(sqlite3_file *f, int l) { (void)f; (void)l; return SQLITE_OK; }
static int file_reserved(sqlite3_file *f, int *out) { (void)f; *out = 0; return SQLITE_OK; }
static int file_control(sqlite3_file *f, int op, void *arg) { (void)f; (void)op; (void)arg; return SQLITE_NOTFOUND; }
static int file_sector_size(sqlite3_file *f) { (void)f; return 4096; }
static int file_characteristics(sqlite3_file *f) { return vfs_characteristics(((morgana_file *)f)->fid); }

static const sqlite3_io_methods morgana_io = {
    1, file_close, file_read, file_write, file_truncate, file_sync, file_size,
    file_lock, file_unlock, file_reserved, file_control, file_sector_size, file_characteristics,
};

static int vfs_x_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)v;
    int dummy, fid = vfs_open(name, flags, out_flags ? out_flags : &dummy);
    f->pMethods = 0;                      /* xClose is not called unless pMethods is set */
    if (fid < 0) return -fid;
    ((morgana_file *)f)->fid = fid;
    f->pMethods = &morgana_io;
    return SQLITE_OK;
}

static int vfs_x_delete(sqlite3_vfs *v, const char *name, int sync_dir) { (void)v; return vfs_delete(name, sync_dir); }
static int vfs_x_access(sqlite3_vfs *v, const char *name, int flags, int *out) { (void)v; return vfs_access(name, flags, out); }

/* No directories: a name is its own full path. */
static int vfs_x_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    sqlite3_snprintf(n, out, "%s", name);
    return strlen(name) < (unsigned)n ? SQLITE_OK : SQLITE_CANTOPEN;
}

static int vfs_x_randomness(sqlite3_vfs *v, int n, char *out) { (void)v; return vfs_randomness(n, out); }
static int vfs_x_sleep(sqlite3_vfs *v, int us) { (void)v; return vfs_sleep(us); }
static int vfs_x_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; *t = vfs_time(); return SQLITE_OK; }
static int vfs_x_time(sqlite3_vfs *v, double *t) { (void)v; *t = vfs_time() / 86400000.0; return SQLITE_OK; }
static int vfs_x_last_error(sqlite3_vfs *v, int n, char *out) { (void)v; (void)n; (void)out; return 0; }

static sqlite3_vfs morgana_vfs = {
    2, sizeof(morgana_file), 64, 0, "morgana", 0,
    vfs_x_open, vfs_x_delete, vfs_x_access, vfs_x_full_pathname,
    0, 0, 0, 0,                           /* no dlopen: SQLITE_OMIT_LOAD_EXTENSION */
    vfs_x_randomness, vfs_x_sleep, vfs_x_time, vfs_x_last_error, vfs_x_time64,
};

/* SQLITE_OS_OTHER: SQLite calls these from sqlite3_initialize(). */
int sqlite3_os_init(void) { return sqlite3_vfs_register(&morgana_vfs, 1); }
int sqlite3_os_end(void) { return SQLITE_OK; }

/* Start-up, called once by the app before any other SQLite function: memsys5 runs on
 * `bytes` of memory at `heap`, which the app reserved in the shared linear memory
 * (SQLITE_ZERO_MALLOC: there is no other allocator). Returns a SQLite result code. */
EXPORT(morgana_sqlite_init) int morgana_sqlite_init(void *heap, int bytes)
{
    int rc = sqlite3_config(SQLITE_CONFIG_HEAP, heap, bytes, 64);
    if (rc == SQLITE_OK) rc = sqlite3_initialize();
    return rc;
}

/* Variadic SQLite entry points cannot be wasm exports the app can call: fixed-arity
 * wrappers for the ones it needs. */
EXPORT(morgana_sqlite_db_config_defensive) int morgana_sqlite_db_config_defensive(sqlite3 *db, int on)
{
    return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, (int *)0);
}

/* The SQLite heap's use, for benchmarks and leak checks. */
EXPORT(morgana_sqlite_memory_used) sqlite3_int64 morgana_sqlite_memory_used(void) { return sqlite3_memory_used(); }
EXPORT(morgana_sqlite_memory_highwater) sqlite3_int64 morgana_sqlite_memory_highwater(void) { return sqlite3_memory_highwater(0); }
