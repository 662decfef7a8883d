// blkio: dom0 Linux's baseline for blkbench — 4 KiB O_DIRECT reads and writes,
// one at a time (queue depth 1), on a block device or file.
//
//   blkio <device> <ops> <span-in-4KiB-blocks>
//
// Prints, for seq_read, seq_write, rand_read and rand_write, the lines
//   bench: blk_<name>_iops <n> iops
//   bench: blk_<name>_mibs <n> MiBps
// in the format of tools/bench/table.ts's benchFigures(). Built static on the
// host by tools/bench.ts and run in dom0 through the test bed.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint32_t rng = 0x2545f491u;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(int fd, void *buf, const char *name, int write, int random, long ops, uint64_t span) {
  uint64_t next = 0;
  double t0 = now();
  for (long i = 0; i < ops; i++) {
    uint64_t blk = random ? (((uint64_t)rnd() << 32) | rnd()) % span : next++ % span;
    ssize_t n = write ? pwrite(fd, buf, 4096, (off_t)(blk * 4096)) : pread(fd, buf, 4096, (off_t)(blk * 4096));
    if (n != 4096) {
      perror(name);
      return -1;
    }
  }
  double s = now() - t0;
  printf("bench: blk_%s_iops %.1f iops\n", name, ops / s);
  printf("bench: blk_%s_mibs %.3f MiBps\n", name, ops * 4096.0 / 1048576.0 / s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: blkio <device> <ops> <span-in-4KiB-blocks>\n");
    return 2;
  }
  long ops = atol(argv[2]);
  uint64_t span = strtoull(argv[3], 0, 10);
  if (ops <= 0 || span == 0) return 2;
  int fd = open(argv[1], O_RDWR | O_DIRECT);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  void *buf;
  // O_DIRECT needs an aligned buffer.
  if (posix_memalign(&buf, 4096, 4096)) return 1;
  memset(buf, 0x5a, 4096);
  if (run(fd, buf, "seq_read", 0, 0, ops, span) || run(fd, buf, "seq_write", 1, 0, ops, span) ||
      run(fd, buf, "rand_read", 0, 1, ops, span) || run(fd, buf, "rand_write", 1, 1, ops, span))
    return 1;
  if (fsync(fd)) return 1;
  close(fd);
  return 0;
}
