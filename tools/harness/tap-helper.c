/*
 * tap-helper: opens a TAP device and relays its Ethernet frames over stdin and
 * stdout, so the harness (tools/harness/tap.ts) can put a real Linux stack on a
 * guest's wire without a native Node addon. Built at test time with the system
 * cc into .cache/tap-helper/ and run inside the test's network namespace
 * (`ip netns exec NS tap-helper IFNAME`), so the device is created there.
 *
 * The device: /dev/net/tun with TUNSETIFF, IFF_TAP | IFF_NO_PI (no packet
 * information header: one read or write is one Ethernet frame; Linux's
 * Documentation/networking/tuntap.rst). It exists while this process holds it.
 *
 * The records, both ways: a 4-byte big-endian length, then that many bytes of
 * one frame (ETH_HLEN..MAX_FRAME). Once the device exists, a record of length 0
 * on stdout says "ready". A record from stdin with a bad length is refused on
 * stderr and ends the helper (exit 2): the stream cannot be resynchronised.
 * stdin's end closes the device (exit 0); stderr then gets the counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define ETH_HLEN  14
#define MAX_FRAME 65536 /* tap.ts's MAX_FRAME: the largest frame netfront sends is 65535 bytes */
#define HDR       4

static unsigned char in_buf[HDR + MAX_FRAME];
static size_t in_len;                          /* bytes of in_buf filled from stdin */
static unsigned char out_buf[HDR + MAX_FRAME]; /* one record to stdout */
static unsigned long frames_in, frames_out, write_errors;

/* Writes all of buf to fd (a pipe: may be short); 0 or -1. */
static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Opens the TAP device `name`; the fd or -1 (the reason on stderr). */
static int tap_open(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "tap-helper: open /dev/net/tun: %s (needs root and the tun module)\n",
                strerror(errno));
        return -1;
    }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "tap-helper: TUNSETIFF %s: %s\n", name, strerror(errno));
        close(fd);
        return -1;
    }
    /* Reads must not block the loop: poll() says when one is ready. */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        fprintf(stderr, "tap-helper: O_NONBLOCK: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes every complete record of in_buf to the device; -1 on a bad length. */
static int stdin_records(int tap)
{
    size_t at = 0;
    while (in_len - at >= HDR) {
        uint32_t len = be32(in_buf + at);
        if (len < ETH_HLEN || len > MAX_FRAME) {
            fprintf(stderr, "tap-helper: a record from stdin of %u bytes: a frame has %d..%d\n", len,
                    ETH_HLEN, MAX_FRAME);
            return -1;
        }
        if (in_len - at - HDR < len) break;
        /* A frame the stack refuses (EINVAL, EIO while the link is down) is lost, as on a wire. */
        if (write(tap, in_buf + at + HDR, len) != (ssize_t)len) write_errors++;
        frames_in++;
        at += HDR + len;
    }
    memmove(in_buf, in_buf + at, in_len - at);
    in_len -= at;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) == 0 || strlen(argv[1]) >= IFNAMSIZ) {
        fprintf(stderr, "usage: tap-helper IFNAME (1..%d characters)\n", IFNAMSIZ - 1);
        return 2;
    }
    int tap = tap_open(argv[1]);
    if (tap < 0) return 1;
    put_be32(out_buf, 0);
    if (write_all(1, out_buf, HDR) < 0) return 1; /* ready */
    struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = tap, .events = POLLIN } };
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "tap-helper: poll: %s\n", strerror(errno));
            return 1;
        }
        if (fds[0].revents) {
            ssize_t n = read(0, in_buf + in_len, sizeof in_buf - in_len);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break; /* stdin closed: the harness is done */
            in_len += (size_t)n;
            if (stdin_records(tap) < 0) return 2;
        }
        if (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            fprintf(stderr, "tap-helper: the device failed (poll revents 0x%x)\n", fds[1].revents);
            return 1;
        }
        if (fds[1].revents & POLLIN) {
            /* Several frames per wakeup, until the device has none. */
            for (int i = 0; i < 64; i++) {
                ssize_t n = read(tap, out_buf + HDR, MAX_FRAME);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
                if (n < 0) {
                    fprintf(stderr, "tap-helper: read: %s\n", strerror(errno));
                    return 1;
                }
                put_be32(out_buf, (uint32_t)n);
                if (write_all(1, out_buf, HDR + (size_t)n) < 0) return 1; /* stdout closed */
                frames_out++;
            }
        }
    }
    fprintf(stderr, "tap-helper: %s closed: %lu frames in, %lu out, %lu refused by the device\n", argv[1],
            frames_in, frames_out, write_errors);
    return 0;
}
