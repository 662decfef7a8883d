/* netbench: dom0's client for the network rows of `npm run bench` (tools/bench/net.ts).
 * Talks to a TCP echo server (RFC 862: Morgana's echo app, or the Linux domU's
 * tools/bench/linux/echoserv.c) and prints figures in tools/bench/table.ts's format,
 * "bench: <name> <value> <unit>", or one "FAIL: netbench ..." line (exit status 1).
 * Built static on the host (gcc -static) and run in dom0 through the test bed.
 *
 *   netbench wait <ip> <port> <timeout ms>
 *       connects every 20 ms until the server accepts: "netbench: <ip>:<port> up after <ms> ms".
 *   netbench bulk <ip> <port> <bytes> <timeout s>
 *       one connection: sends <bytes> of a fixed pseudo-random pattern while reading the echo
 *       back (an echo server's two directions run at once), every echoed byte compared.
 *         net_tx_mibs    bytes / (connected → the guest acknowledged the last byte: the send
 *                        queue's unacknowledged count, SIOCOUTQ, reached 0) — dom0 → guest
 *         net_rx_mibs    bytes / (connected → the last echoed byte read) — guest → dom0
 *   netbench rr <ip> <port> <count> <size> <timeout s>
 *       one connection, TCP_NODELAY: <count> round trips of <size> bytes (after 20 unmeasured
 *       ones), each timed: net_rr_p50_us, net_rr_p99_us, net_rr_mean_us, net_rr_min_us.
 *   netbench crr <ip> <port> <count> <timeout s>
 *       <count> times: connect, 1 byte there and back, close: net_crr_p50_us, net_crr_p99_us.
 * Every mode is bounded: past its timeout it prints FAIL and exits 1 (SIGALRM). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATTERN 65521 /* prime: the pattern's period shares no factor with page or segment sizes */
#define CHUNK   65536

static uint8_t pattern[PATTERN + CHUNK];
static const char *mode = "";

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: netbench %s: ", mode);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: netbench: timed out (the guest stopped answering?)\n";
    if (write(1, msg, sizeof msg - 1) < 0) _exit(1);
    _exit(1);
}

static int usage(void)
{
    fprintf(stderr, "usage: netbench wait <ip> <port> <timeout ms>\n"
                    "       netbench bulk <ip> <port> <bytes> <timeout s>\n"
                    "       netbench rr <ip> <port> <count> <size> <timeout s>\n"
                    "       netbench crr <ip> <port> <count> <timeout s>\n");
    return 2;
}

static long num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == 0 || *end != 0 || v < lo || v > hi) {
        fprintf(stderr, "netbench: %s must be a number in %ld..%ld, got \"%s\"\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static struct sockaddr_in address(const char *ip, long port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "netbench: \"%s\" is not an IPv4 address\n", ip);
        exit(2);
    }
    return a;
}

/* A connected TCP socket, or -1 with errno set. */
static int dial(const struct sockaddr_in *a, int nodelay)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) fail("socket: %s", strerror(errno));
    if (nodelay) {
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(s, (const struct sockaddr *)a, sizeof *a) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

static void write_all(int s, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(s, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail("write: %s", w < 0 ? strerror(errno) : "wrote nothing");
        p += w;
        n -= (size_t)w;
    }
}

static void read_all(int s, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(s, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) fail("the server closed the connection with %zu bytes of the echo missing", n);
        if (r < 0) fail("read: %s", strerror(errno));
        p += r;
        n -= (size_t)r;
    }
}

static int wait_up(const char *ip, long port, long timeout_ms)
{
    struct sockaddr_in a = address(ip, port);
    double t0 = now_us();
    int last = 0;
    while (now_us() - t0 < timeout_ms * 1e3) {
        int s = dial(&a, 0);
        if (s >= 0) {
            close(s);
            printf("netbench: %s:%ld up after %.0f ms\n", ip, port, (now_us() - t0) / 1e3);
            return 0;
        }
        last = errno;
        usleep(20000);
    }
    fail("%s:%ld did not accept a connection within %ld ms (last error: %s)", ip, port, timeout_ms,
         strerror(last));
}

static int bulk(const char *ip, long port, long bytes)
{
    struct sockaddr_in a = address(ip, port);
    static uint8_t in[CHUNK];
    int s = dial(&a, 0);
    if (s < 0) fail("connect %s:%ld: %s", ip, port, strerror(errno));
    if (fcntl(s, F_SETFL, O_NONBLOCK) < 0) fail("fcntl: %s", strerror(errno));
    double t0 = now_us(), acked = 0, done = 0;
    long sent = 0, got = 0;
    int shut = 0;
    while (got < bytes || !acked) {
        struct pollfd p = { .fd = s, .events = POLLIN | (sent < bytes ? POLLOUT : 0) };
        /* once everything is written, poll the send queue every 200 µs for the guest's last ACK */
        int r = poll(&p, 1, sent < bytes || got < bytes ? 1000 : 1);
        if (r < 0 && errno != EINTR) fail("poll: %s", strerror(errno));
        if (p.revents & (POLLERR | POLLNVAL))
            fail("the connection failed after %ld bytes sent, %ld echoed", sent, got);
        if (sent < bytes && (p.revents & POLLOUT)) {
            long n = bytes - sent < CHUNK ? bytes - sent : CHUNK;
            ssize_t w = write(s, pattern + sent % PATTERN, (size_t)n);
            if (w < 0 && errno != EAGAIN && errno != EINTR) fail("write: %s", strerror(errno));
            if (w > 0) sent += w;
        }
        if (sent == bytes && !shut) {
            shutdown(s, SHUT_WR); /* the echo server closes its side after echoing everything */
            shut = 1;
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(s, in, sizeof in);
            if (n < 0 && errno != EAGAIN && errno != EINTR) fail("read: %s", strerror(errno));
            if (n == 0 && got < bytes) fail("the server closed after echoing %ld of %ld bytes", got, bytes);
            if (n > 0) {
                if (got + n > bytes)
                    fail("the server echoed %ld bytes, more than the %ld sent", got + n, bytes);
                if (memcmp(in, pattern + got % PATTERN, (size_t)n) != 0)
                    fail("the echo differs from what was sent between bytes %ld and %ld", got, got + n);
                got += n;
                if (got == bytes) done = now_us();
            }
        }
        if (shut && !acked) {
            int outq = 0;
            if (ioctl(s, SIOCOUTQ, &outq) < 0) fail("ioctl SIOCOUTQ: %s", strerror(errno));
            if (outq == 0) acked = now_us();
        }
    }
    close(s);
    double mib = bytes / 1048576.0;
    printf("bench: net_tx_mibs %.3f MiBps\n", mib / ((acked - t0) / 1e6));
    printf("bench: net_rx_mibs %.3f MiBps\n", mib / ((done - t0) / 1e6));
    printf("bench: net_bulk_ms %.1f ms\n", (done - t0) / 1e3);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted samples. */
static double pct(const double *v, long n, double p)
{
    long k = (long)(p / 100 * n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static void report(const char *name, double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    double sum = 0;
    for (long i = 0; i < n; i++) sum += v[i];
    printf("bench: net_%s_p50_us %.1f us\n", name, pct(v, n, 50));
    printf("bench: net_%s_p99_us %.1f us\n", name, pct(v, n, 99));
    printf("bench: net_%s_mean_us %.1f us\n", name, sum / n);
    printf("bench: net_%s_min_us %.1f us\n", name, v[0]);
}

static int rr(const char *ip, long port, long count, long size)
{
    struct sockaddr_in a = address(ip, port);
    uint8_t *back = malloc((size_t)size);
    double *v = malloc(sizeof(double) * (size_t)count);
    if (!back || !v) fail("out of memory");
    int s = dial(&a, 1);
    if (s < 0) fail("connect %s:%ld: %s", ip, port, strerror(errno));
    for (long i = -20; i < count; i++) {
        const uint8_t *out = pattern + ((i + 20) * 31) % PATTERN;
        double t = now_us();
        write_all(s, out, (size_t)size);
        read_all(s, back, (size_t)size);
        if (memcmp(out, back, (size_t)size) != 0)
            fail("round trip %ld: the echo differs from what was sent", i);
        if (i >= 0) v[i] = now_us() - t;
    }
    close(s);
    report("rr", v, count);
    return 0;
}

static int crr(const char *ip, long port, long count)
{
    struct sockaddr_in a = address(ip, port);
    double *v = malloc(sizeof(double) * (size_t)count);
    if (!v) fail("out of memory");
    for (long i = 0; i < count; i++) {
        uint8_t b = (uint8_t)i, back;
        double t = now_us();
        int s = dial(&a, 1);
        if (s < 0) fail("connection %ld to %s:%ld: %s", i, ip, port, strerror(errno));
        write_all(s, &b, 1);
        read_all(s, &back, 1);
        if (back != b) fail("connection %ld: the echo differs from what was sent", i);
        close(s);
        v[i] = now_us() - t;
    }
    report("crr", v, count);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    uint32_t x = 0x9e3779b9u;
    for (size_t i = 0; i < sizeof pattern; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = i < PATTERN ? (uint8_t)(x >> 24) : pattern[i - PATTERN];
    }
    if (argc < 2) return usage();
    mode = argv[1];
    if (!strcmp(mode, "wait") && argc == 5)
        return wait_up(argv[2], num(argv[3], 1, 65535, "port"), num(argv[4], 1, 3600000, "timeout ms"));
    if (argc < 5) return usage();
    const char *ip = argv[2];
    long port = num(argv[3], 1, 65535, "port");
    if (!strcmp(mode, "bulk") && argc == 6) {
        alarm((unsigned)num(argv[5], 1, 36000, "timeout s"));
        return bulk(ip, port, num(argv[4], 1, 1L << 34, "bytes"));
    }
    if (!strcmp(mode, "rr") && argc == 7) {
        alarm((unsigned)num(argv[6], 1, 36000, "timeout s"));
        return rr(ip, port, num(argv[4], 1, 10000000, "count"), num(argv[5], 1, PATTERN, "size"));
    }
    if (!strcmp(mode, "crr") && argc == 6) {
        alarm((unsigned)num(argv[5], 1, 36000, "timeout s"));
        return crr(ip, port, num(argv[4], 1, 10000000, "count"));
    }
    return usage();
}
