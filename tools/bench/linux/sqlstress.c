// sqlstress for Linux: the Linux baseline of the Mirage paper's Figure 3 workload.
// The same workload, step for step, as assembly/apps/sqlstress/main.ts (read its
// header comment): both print the same checksums for the same arguments.
//
//   sqlstress [-d DB_PATH] <iterations> <size>[,<size>...] [seed]
//
// DB_PATH defaults to ./stress.db (the Linux domU uses /mnt/stress.db on ext4).
// Output, per size: "sqlstress: size <S> iterations <N> live <L> checksum <X> ms <T>",
// then "sqlstress: total ms <T>" and "TEST PASS", or "FAIL: <why>" (exit status 1).
//
// Built by tools/bench/linux.ts against the very amalgamation the unikernel uses
// (tools/lib/sqlite.ts: better-sqlite3 12.11.1's SQLite 3.53.2) with gcc -O2 -static,
// SQLite's default unix VFS, and durability equivalent to the unikernel's:
//   compile time  SQLITE_THREADSAFE=0, SQLITE_DEFAULT_LOCKING_MODE=1 (EXCLUSIVE),
//                 SQLITE_DEFAULT_SYNCHRONOUS=2 (FULL), SQLITE_OMIT_WAL, SQLITE_TEMP_STORE=3,
//                 SQLITE_OMIT_LOAD_EXTENSION, SQLITE_DEFAULT_FOREIGN_KEYS=1, SQLITE_DQS=0
//   at open       PRAGMA cell_size_check=ON; synchronous=FULL; journal_mode=DELETE;
//                 page_size=4096; locking_mode=EXCLUSIVE  (the unikernel's pragmas)
// so every commit is a rollback journal written, fsync()ed, the database written,
// fsync()ed, the journal unlinked (and its directory fsync()ed) — on ext4, barriers on.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sqlite3.h"

static uint32_t rng_next(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

static unsigned char *scratch;
static size_t scratch_len;

// A record's bytes: xorshift32 words seeded with (u32)(key * 2654435761 + version * 40503) ^ size.
static const unsigned char *fill(int64_t key, uint32_t version, int size) {
  if (scratch_len < (size_t)size + 4) {
    free(scratch);
    scratch_len = (size_t)size + 4;
    scratch = malloc(scratch_len);
    if (!scratch) { printf("FAIL: out of memory\n"); exit(1); }
  }
  uint32_t s = ((uint32_t)key * 2654435761u + version * 40503u) ^ (uint32_t)size;
  if (s == 0) s = 1;
  for (int i = 0; i < size; i += 4) {
    uint32_t w = rng_next(&s);
    scratch[i] = (unsigned char)w;
    scratch[i + 1] = (unsigned char)(w >> 8);
    scratch[i + 2] = (unsigned char)(w >> 16);
    scratch[i + 3] = (unsigned char)(w >> 24);
  }
  return scratch;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static sqlite3 *db;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  fflush(stdout);
  return 0;
}

static sqlite3_stmt *prepare(const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    fail("preparing %s: %s", sql, sqlite3_errmsg(db));
    exit(1);
  }
  return st;
}

// Runs a statement that returns no rows, then resets it and clears its bindings.
static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE;
}

static int run_size(int size, int iterations, uint32_t seed) {
  char *err = NULL;
  if (sqlite3_exec(db, "DROP TABLE IF EXISTS kv; CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)", 0, 0, &err) != SQLITE_OK)
    return fail("%s", err);
  int cap = (1 << 20) / size;
  if (cap > 64) cap = 64;
  if (cap < 4) cap = 4;
  uint32_t rng = (seed ^ (uint32_t)size) | 1;
  int64_t *keys = malloc(sizeof(int64_t) * (size_t)(cap + 1));
  uint32_t *versions = malloc(sizeof(uint32_t) * (size_t)(cap + 1));
  int live = 0;
  int64_t last_key = 0;
  sqlite3_stmt *ins = prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
  sqlite3_stmt *upd = prepare("UPDATE kv SET v = ? WHERE k = ?");
  sqlite3_stmt *del = prepare("DELETE FROM kv WHERE k = ?");
  sqlite3_stmt *all = prepare("SELECT k, v FROM kv ORDER BY k");
  int64_t t0 = now_ns();
  for (int it = 0; it < iterations; it++) {
    uint32_t r = rng_next(&rng) % 4;
    int op = r <= 1 ? 0 : (int)r - 1; // 0 insert, 1 update, 2 delete
    if (live == 0) op = 0;
    else if (live >= cap && op == 0) op = 2;
    int ok;
    if (op == 0) {
      int64_t k = ++last_key;
      sqlite3_bind_int64(ins, 1, k);
      sqlite3_bind_blob(ins, 2, fill(k, 0, size), size, SQLITE_TRANSIENT);
      ok = run(ins);
      keys[live] = k;
      versions[live] = 0;
      live++;
    } else {
      int i = (int)(rng_next(&rng) % (uint32_t)live);
      if (op == 1) {
        uint32_t v = versions[i] + 1;
        versions[i] = v;
        sqlite3_bind_blob(upd, 1, fill(keys[i], v, size), size, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 2, keys[i]);
        ok = run(upd);
      } else {
        sqlite3_bind_int64(del, 1, keys[i]);
        ok = run(del);
        memmove(keys + i, keys + i + 1, sizeof(int64_t) * (size_t)(live - i - 1));
        memmove(versions + i, versions + i + 1, sizeof(uint32_t) * (size_t)(live - i - 1));
        live--;
      }
    }
    if (!ok) return fail("size %d iteration %d: %s", size, it, sqlite3_errmsg(db));
    // Read everything back and compare with the model.
    int n = 0, rc;
    while ((rc = sqlite3_step(all)) == SQLITE_ROW) {
      int64_t k = sqlite3_column_int64(all, 0);
      if (n >= live || k != keys[n])
        return fail("size %d iteration %d: unexpected key %lld", size, it, (long long)k);
      const void *got = sqlite3_column_blob(all, 1);
      int len = sqlite3_column_bytes(all, 1);
      const unsigned char *want = fill(keys[n], versions[n], size);
      if (len != size || memcmp(got, want, (size_t)size) != 0)
        return fail("size %d iteration %d: record %lld differs", size, it, (long long)keys[n]);
      n++;
    }
    sqlite3_reset(all);
    if (rc != SQLITE_DONE) return fail("size %d iteration %d: %s", size, it, sqlite3_errmsg(db));
    if (n != live) return fail("size %d iteration %d: %d records, want %d", size, it, n, live);
  }
  int64_t ms = (now_ns() - t0) / 1000000;
  uint32_t h = 2166136261u;
  for (int i = 0; i < live; i++) {
    h = (h ^ (uint32_t)keys[i]) * 16777619u;
    h = (h ^ versions[i]) * 16777619u;
  }
  printf("sqlstress: size %d iterations %d live %d checksum %u ms %lld\n", size, iterations, live, h, (long long)ms);
  fflush(stdout);
  sqlite3_finalize(ins);
  sqlite3_finalize(upd);
  sqlite3_finalize(del);
  sqlite3_finalize(all);
  free(keys);
  free(versions);
  return 1;
}

// A decimal in 1..2^31-1 (sizes, iterations) or, for the seed, any u32.
static int parse_u32(const char *s, uint32_t max, uint32_t *out) {
  char *end;
  if (!*s) return 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end || v > max || s[0] == '-') return 0;
  *out = (uint32_t)v;
  return 1;
}

int main(int argc, char **argv) {
  const char *path = "stress.db";
  int a = 1;
  if (argc > 2 && strcmp(argv[1], "-d") == 0) {
    path = argv[2];
    a = 3;
  }
  uint32_t iterations, seed = 42;
  if (argc - a < 2 || argc - a > 3 || !parse_u32(argv[a], 0x7fffffff, &iterations) ||
      (argc - a == 3 && !parse_u32(argv[a + 2], 0xffffffff, &seed))) {
    fail("usage: sqlstress [-d DB_PATH] <iterations> <size>[,<size>...] [seed]");
    return 1;
  }
  // Sizes: each a positive multiple of 4 (the records are whole words), up to 1 MiB.
  int sizes[64], nsizes = 0;
  char *list = strdup(argv[a + 1]);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    uint32_t s;
    if (nsizes == 64 || !parse_u32(tok, 1 << 20, &s) || s == 0) {
      fail("bad size '%s' (1..1048576)", tok);
      return 1;
    }
    sizes[nsizes++] = (int)s;
  }
  if (nsizes == 0) {
    fail("no record size given");
    return 1;
  }
  unlink(path); // a fresh database, as the unikernel formats its disk
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    fail("opening %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    return 1;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)0);
  char *err = NULL;
  if (sqlite3_exec(db, "PRAGMA cell_size_check=ON; PRAGMA synchronous=FULL; PRAGMA journal_mode=DELETE; "
                       "PRAGMA page_size=4096; PRAGMA locking_mode=EXCLUSIVE; SELECT count(*) FROM sqlite_schema",
                   0, 0, &err) != SQLITE_OK) {
    fail("opening %s: %s", path, err);
    return 1;
  }
  int64_t t0 = now_ns();
  for (int i = 0; i < nsizes; i++)
    if (!run_size(sizes[i], (int)iterations, seed)) return 1;
  printf("sqlstress: total ms %lld\n", (long long)((now_ns() - t0) / 1000000));
  if (sqlite3_close(db) != SQLITE_OK) {
    fail("closing: %s", sqlite3_errmsg(db));
    return 1;
  }
  printf("TEST PASS\n");
  fflush(stdout);
  return 0;
}
