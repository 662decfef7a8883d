// A Linux-userspace host for a Morgana wasm module translated by wasm2c: the same
// build/<app>.wasm the unikernel runs, as an ordinary static Linux executable (the
// Linux baseline of `npm run bench`, tools/bench/linux.ts).
//
//   wasm2c --module-name app build/bench.wasm -o app.c
//   gcc -O2 -static -I/usr/share/wabt/wasm2c wasm-host.c app.c wasm-rt-impl.c -lm
//   ./bench entry alloc:1000000
//
// Implements the part of shim/ABI.md a compute-only app needs, on Linux:
//   console_write    write(1), all bytes, EFAULT for a bad range
//   clock_monotonic  clock_gettime(CLOCK_MONOTONIC)
//   clock_wall       clock_gettime(CLOCK_REALTIME)
//   block(deadline)  sleeps until the deadline (there are no event sources here);
//                    with no deadline it reports the deadlock and exits 124
//   shutdown(r)      exit status as the harness's: 0 poweroff, 3 reboot, 2 crash, 5 watchdog
//   boot_cmdline     argv[1..] joined by single spaces
//   boot_info        abi 1, platform 3 (Linux process), domid 0xffffffff, nr_pages and
//                    mem_limit from sysconf, boot_ns = clock_monotonic() at main()
// tools/bench/linux.ts refuses a module importing anything else (the link would fail).
// A trap prints "TRAP: <reason>" and exits 2, like a crash; _start returning exits 0.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "app.h"
#include "wasm-rt-impl.h"

struct Z_morgana_instance_t {
  int unused;
};

static Z_app_instance_t app;
static struct Z_morgana_instance_t host;
static char *cmdline;
static size_t cmdline_len;
static uint64_t boot_ns;

#define EFAULT_ 14
#define EINVAL_ 22

static uint64_t clock_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// The range [p, p+len) of linear memory, or NULL when it is not entirely inside it.
static uint8_t *range(u32 p, u32 len) {
  wasm_rt_memory_t *m = Z_appZ_memory(&app);
  if ((uint64_t)p + len > m->size) return NULL;
  return m->data + p;
}

u32 Z_morganaZ_console_write(struct Z_morgana_instance_t *h, u32 buf, u32 len) {
  (void)h;
  uint8_t *p = range(buf, len);
  if (!p) return (u32)-EFAULT_;
  for (u32 done = 0; done < len;) {
    ssize_t n = write(1, p + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return (u32)-5; // EIO: stdout is gone
    done += (u32)n;
  }
  return len;
}

u64 Z_morganaZ_clock_monotonic(struct Z_morgana_instance_t *h) {
  (void)h;
  return clock_ns(CLOCK_MONOTONIC);
}

u64 Z_morganaZ_clock_wall(struct Z_morgana_instance_t *h) {
  (void)h;
  return clock_ns(CLOCK_REALTIME);
}

u32 Z_morganaZ_block(struct Z_morgana_instance_t *h, u64 deadline) {
  (void)h;
  if ((int64_t)deadline == INT64_MAX) {
    fprintf(stderr, "wasm-host: block() with no deadline and no event source: deadlock\n");
    exit(124);
  }
  struct timespec t = { .tv_sec = (time_t)(deadline / 1000000000u), .tv_nsec = (long)(deadline % 1000000000u) };
  if ((int64_t)deadline > 0)
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
  return 0;
}

u32 Z_morganaZ_shutdown(struct Z_morgana_instance_t *h, u32 reason) {
  (void)h;
  static const int status[] = { [0] = 0, [1] = 3, [3] = 2, [4] = 5 };
  if (reason > 4 || reason == 2) return (u32)-EINVAL_;
  exit(status[reason]);
}

u32 Z_morganaZ_boot_cmdline(struct Z_morgana_instance_t *h, u32 buf, u32 len) {
  (void)h;
  uint8_t *p = range(buf, len);
  if (!p) return (u32)-EFAULT_;
  memcpy(p, cmdline, len < cmdline_len ? len : cmdline_len);
  return (u32)cmdline_len;
}

static void put32(uint8_t *b, uint32_t v) { memcpy(b, &v, 4); }
static void put64(uint8_t *b, uint64_t v) { memcpy(b, &v, 8); }

u32 Z_morganaZ_boot_info(struct Z_morgana_instance_t *h, u32 buf, u32 len) {
  (void)h;
  uint8_t *p = range(buf, len);
  if (!p) return (u32)-EFAULT_;
  uint8_t info[64] = { 0 };
  long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  put32(info + 0, 1);           // abi_version
  put32(info + 4, 3);           // platform: 3 = a Linux process (1 Xen PV, 2 harness)
  put32(info + 8, 0xffffffffu); // domid: unknown
  put64(info + 16, pages > 0 ? (uint64_t)pages * (uint64_t)psz / 4096 : 0);
  put64(info + 24, avail > 0 ? (uint64_t)avail * (uint64_t)psz : 0);
  put64(info + 56, boot_ns);
  memcpy(p, info, len < 64 ? len : 64);
  return 64;
}

int main(int argc, char **argv) {
  boot_ns = clock_ns(CLOCK_MONOTONIC);
  for (int i = 1; i < argc; i++) cmdline_len += strlen(argv[i]) + (i > 1);
  cmdline = malloc(cmdline_len + 1);
  cmdline[0] = 0;
  for (int i = 1; i < argc; i++) {
    if (i > 1) strcat(cmdline, " ");
    strcat(cmdline, argv[i]);
  }
  wasm_rt_init();
  Z_app_init_module();
  Z_app_instantiate(&app, &host);
  wasm_rt_trap_t trap = wasm_rt_impl_try();
  if (trap != WASM_RT_TRAP_NONE) {
    printf("TRAP: %s\n", wasm_rt_strerror(trap));
    fflush(stdout);
    return 2;
  }
  Z_appZ__start(&app);
  fflush(stdout);
  Z_app_free(&app);
  wasm_rt_free();
  return 0;
}
