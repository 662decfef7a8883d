/* gnt-peer: dom0's side of the grant-table test under real Xen (test/xen/boot.test.ts).
 * It grants two dom0 pages to a domain through Linux's gntalloc device: one read-only,
 * holding "read-only frame", one writable and zeroed. It prints "refs <ro> <rw>", keeps
 * the grants alive until the file given as `done` exists (or 300 s pass), then prints
 * what the writable page holds ("rw: <text>") and exits, which revokes the grants.
 *
 *   gnt-peer <domid> <done-file>
 *
 * The other direction ("map" mode): dom0 maps, read-only through Linux's gntdev device,
 * the page that domain `domid` granted it as `ref` (the xentest case gnttab-export), checks
 * that every byte holds the guest's pattern (byte i = (i * 7 + 0x5a) & 0xff), prints
 * "mapped: pattern ok (4096 bytes)" (or where it differs, and exits 1), keeps the mapping
 * until the file `release` exists (or 300 s pass), unmaps it, prints "unmapped" and exits.
 *
 *   gnt-peer map <domid> <ref> <release-file>
 *
 * Built statically on the host (gcc -static) and run in dom0 from the test bed's share. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdint.h>
#include <xen/gntalloc.h>

/* gntdev's ioctls, declared here after Linux's include/uapi/xen/gntdev.h (not every
 * build host ships that header). */
struct gntdev_grant_ref { uint32_t domid; uint32_t ref; };
struct gntdev_map_grant_ref { uint32_t count; uint32_t pad; uint64_t index; struct gntdev_grant_ref refs[1]; };
struct gntdev_unmap_grant_ref { uint64_t index; uint32_t count; uint32_t pad; };
#define GNTDEV_MAP_GRANT_REF _IOC(_IOC_NONE, 'G', 0, sizeof(struct gntdev_map_grant_ref))
#define GNTDEV_UNMAP_GRANT_REF _IOC(_IOC_NONE, 'G', 1, sizeof(struct gntdev_unmap_grant_ref))

static int map_mode(int domid, unsigned ref, const char *release)
{
    int fd = open("/dev/xen/gntdev", O_RDWR);
    if (fd < 0) { perror("/dev/xen/gntdev"); return 1; }
    struct gntdev_map_grant_ref op = { .count = 1, .refs = { { .domid = domid, .ref = ref } } };
    if (ioctl(fd, GNTDEV_MAP_GRANT_REF, &op)) { perror("IOCTL_GNTDEV_MAP_GRANT_REF"); return 1; }
    /* PROT_READ only: the guest granted the page read-only, so gntdev maps it GNTMAP_readonly. */
    unsigned char *p = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, op.index);
    if (p == MAP_FAILED) { perror("mmap of the guest's grant"); return 1; }
    for (int i = 0; i < 4096; i++)
        if (p[i] != (unsigned char)(i * 7 + 0x5a)) {
            printf("mapped: pattern differs at byte %d: 0x%02x, not 0x%02x\n", i, p[i], (unsigned char)(i * 7 + 0x5a));
            return 1;
        }
    printf("mapped: pattern ok (4096 bytes)\n");
    fflush(stdout);
    for (int i = 0; i < 3000 && access(release, F_OK); i++) usleep(100000);
    if (munmap(p, 4096)) { perror("munmap"); return 1; }
    struct gntdev_unmap_grant_ref un = { .index = op.index, .count = 1 };
    if (ioctl(fd, GNTDEV_UNMAP_GRANT_REF, &un)) { perror("IOCTL_GNTDEV_UNMAP_GRANT_REF"); return 1; }
    close(fd);
    printf("unmapped\n");
    return 0;
}

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
    if (argc == 5 && !strcmp(argv[1], "map")) return map_mode(atoi(argv[2]), strtoul(argv[3], 0, 10), argv[4]);
    if (argc != 3) { fprintf(stderr, "usage: gnt-peer <domid> <done-file> | gnt-peer map <domid> <ref> <release-file>\n"); return 2; }
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
