/* gnt-peer: dom0's side of the grant-table test under real Xen (test/xen/boot.test.ts).
 * It grants two dom0 pages to a domain through Linux's gntalloc device: one read-only,
 * holding "read-only frame", one writable and zeroed. It prints "refs <ro> <rw>", keeps
 * the grants alive until the file given as `done` exists (or 300 s pass), then prints
 * what the writable page holds ("rw: <text>") and exits, which revokes the grants.
 *
 *   gnt-peer <domid> <done-file>
 *
 * Built statically on the host (gcc -static) and run in dom0 from the test bed's share. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xen/gntalloc.h>

/* One page granted to domid; returns its mapping in dom0 and the grant ref. */
static char *grant_page(int fd, int domid, int writable, unsigned *ref)
{
    struct ioctl_gntalloc_alloc_gref op = { .domid = domid, .flags = writable ? GNTALLOC_FLAG_WRITABLE : 0, .count = 1 };
    if (ioctl(fd, IOCTL_GNTALLOC_ALLOC_GREF, &op)) { perror("IOCTL_GNTALLOC_ALLOC_GREF"); exit(1); }
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, op.index);
    if (p == MAP_FAILED) { perror("mmap of a gntalloc page"); exit(1); }
    *ref = op.gref_ids[0];
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: gnt-peer <domid> <done-file>\n"); return 2; }
    int fd = open("/dev/xen/gntalloc", O_RDWR);
    if (fd < 0) { perror("/dev/xen/gntalloc"); return 1; }
    unsigned ro_ref, rw_ref;
    char *ro = grant_page(fd, atoi(argv[1]), 0, &ro_ref);
    char *rw = grant_page(fd, atoi(argv[1]), 1, &rw_ref);
    strcpy(ro, "read-only frame");
    memset(rw, 0, 4096);
    printf("refs %u %u\n", ro_ref, rw_ref);
    fflush(stdout);
    for (int i = 0; i < 3000 && access(argv[2], F_OK); i++) usleep(100000);
    printf("rw: %.16s\n", rw);
    return 0;
}
