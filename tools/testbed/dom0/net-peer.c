/* net-peer: dom0's side of the network tests under real Xen (test/xen/net.test.ts).
 * Built statically on the host (gcc -static, netPeer() in tools/testbed/testbed.ts) and
 * run in dom0 from the test bed's share. One mode per run; each prints one line saying
 * what happened and exits 0 when it is what the mode checks for, 1 otherwise, 2 on usage.
 *
 *   net-peer arp <if> <ip> <timeout ms> <interval us>
 *       ARP who-has <ip> from <if>'s MAC and IPv4 address every interval until a reply:
 *       "arp: <ip> is at <mac> after <ms> ms, <n> requests" (RFC 826). Started before the
 *       guest exists, it is the readiness signal (its first answered packet).
 *   net-peer stop <if> <mac>
 *       one frame of EtherType 0x88b5 holding "stop" to <mac> (nettest's stop frame).
 *   net-peer udp <ip> <port> <count> <size> <timeout ms>
 *       <count> datagrams of <size> bytes, one at a time, each echo compared with what was
 *       sent: "udp: sent N echoed N intact N lost N". Sent from dom0's stack, so they reach
 *       the guest with a blank checksum (NETRXF_csum_blank) when the vif offloads it.
 *   net-peer tcp <ip> <port> <in file> <out file> <timeout s>
 *       connects, sends the whole in file while copying what comes back into the out file,
 *       half-closes after the last byte and reads until the peer closes:
 *       "tcp: sent N received N in <ms> ms (<tx Mbit/s>)". Compare the files' hashes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_P_ARP_ 0x0806
#define ETH_P_TEST 0x88b5 /* IEEE 802 local experimental */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int usage(void)
{
    fprintf(stderr, "usage: net-peer arp <if> <ip> <timeout ms> <interval us>\n"
                    "       net-peer stop <if> <mac>\n"
                    "       net-peer udp <ip> <port> <count> <size> <timeout ms>\n"
                    "       net-peer tcp <ip> <port> <in file> <out file> <timeout s>\n");
    return 2;
}

static long num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == 0 || *end != 0 || v < lo || v > hi) {
        fprintf(stderr, "net-peer: %s must be a number in %ld..%ld, got \"%s\"\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned b[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++) mac[i] = (uint8_t)b[i];
    return 0;
}

/* A packet socket bound to `ifname` for EtherType `proto`; its index, MAC and IPv4 address. */
static int packet_socket(const char *ifname, uint16_t proto, uint8_t mac[6], uint8_t ip[4], int *ifindex)
{
    int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
    if (fd < 0) {
        perror("net-peer: socket(AF_PACKET)");
        exit(1);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
        fprintf(stderr, "net-peer: no interface %s: %s\n", ifname, strerror(errno));
        exit(1);
    }
    *ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
        fprintf(stderr, "net-peer: %s has no hardware address: %s\n", ifname, strerror(errno));
        exit(1);
    }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    memset(ip, 0, 4);
    ifr.ifr_addr.sa_family = AF_INET;
    if (ioctl(fd, SIOCGIFADDR, &ifr) == 0) memcpy(ip, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, 4);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(proto);
    sll.sll_ifindex = *ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        perror("net-peer: bind(AF_PACKET)");
        exit(1);
    }
    return fd;
}

static void send_frame(int fd, int ifindex, const uint8_t *f, size_t len)
{
    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    memcpy(to.sll_addr, f, 6);
    /* ENOBUFS/ENETDOWN while the bridge has no port yet: the next request tries again */
    (void)sendto(fd, f, len, 0, (struct sockaddr *)&to, sizeof to);
}

/* The interface's MAC now: a bridge without an address of its own takes its ports' lowest. */
static void current_mac(int fd, const char *ifname, uint8_t mac[6])
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
}

static int mode_arp(char **a)
{
    uint8_t mac[6], me[4], target[4];
    int ifindex;
    if (inet_pton(AF_INET, a[1], target) != 1) {
        fprintf(stderr, "net-peer: \"%s\" is not an IPv4 address\n", a[1]);
        return 2;
    }
    long timeout = num(a[2], 1, 600000, "timeout ms"), interval = num(a[3], 100, 10000000, "interval us");
    int fd = packet_socket(a[0], ETH_P_ARP_, mac, me, &ifindex);
    uint8_t req[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    req[12] = 0x08, req[13] = 0x06;                     /* ARP */
    req[14] = 0, req[15] = 1, req[16] = 8, req[17] = 0; /* Ethernet, IPv4 */
    req[18] = 6, req[19] = 4, req[20] = 0, req[21] = 1; /* request */
    memcpy(req + 28, me, 4);
    memcpy(req + 38, target, 4);
    double t0 = now_ms(), next = t0;
    long sent = 0;
    for (;;) {
        double t = now_ms();
        if (t - t0 >= timeout) {
            printf("arp: no reply from %s in %ld ms (%ld requests)\n", a[1], timeout, sent);
            return 1;
        }
        if (t >= next) {
            current_mac(fd, a[0], mac); /* it changes when the guest's vif joins the bridge */
            memcpy(req + 6, mac, 6);
            memcpy(req + 22, mac, 6);
            send_frame(fd, ifindex, req, sizeof req);
            sent++;
            next += interval / 1e3;
            if (next < t) next = t + interval / 1e3;
        }
        double wait = next - now_ms();
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, wait > 0 ? (int)wait + 1 : 0) <= 0) continue;
        uint8_t r[1514];
        ssize_t n = recv(fd, r, sizeof r, 0);
        /* a reply (op 2) from the target's protocol address (our own requests come back here too) */
        if (n >= 42 && r[12] == 0x08 && r[13] == 0x06 && r[20] == 0 && r[21] == 2 &&
            !memcmp(r + 28, target, 4)) {
            printf("arp: %s is at %02x:%02x:%02x:%02x:%02x:%02x after %.1f ms, %ld requests\n", a[1], r[22],
                   r[23], r[24], r[25], r[26], r[27], now_ms() - t0, sent);
            return 0;
        }
    }
}

static int mode_stop(char **a)
{
    uint8_t mac[6], me[4], dst[6];
    int ifindex;
    if (parse_mac(a[1], dst) < 0) {
        fprintf(stderr, "net-peer: \"%s\" is not a MAC address (xx:xx:xx:xx:xx:xx)\n", a[1]);
        return 2;
    }
    int fd = packet_socket(a[0], ETH_P_TEST, mac, me, &ifindex);
    uint8_t f[60] = { 0 }; /* the Ethernet minimum (without FCS) */
    memcpy(f, dst, 6);
    memcpy(f + 6, mac, 6);
    f[12] = ETH_P_TEST >> 8, f[13] = ETH_P_TEST & 0xff;
    memcpy(f + 14, "stop", 4);
    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    memcpy(to.sll_addr, dst, 6);
    if (sendto(fd, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to) != sizeof f) {
        printf("stop: sending to %s failed: %s\n", a[1], strerror(errno));
        return 1;
    }
    printf("stop: sent to %s\n", a[1]);
    return 0;
}

static int inet_socket(int type, const char *ip, long port, struct sockaddr_in *to)
{
    memset(to, 0, sizeof *to);
    to->sin_family = AF_INET;
    to->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &to->sin_addr) != 1) {
        fprintf(stderr, "net-peer: \"%s\" is not an IPv4 address\n", ip);
        exit(2);
    }
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) {
        perror("net-peer: socket");
        exit(1);
    }
    return fd;
}

static int mode_udp(char **a)
{
    struct sockaddr_in to;
    long port = num(a[1], 1, 65535, "port"), count = num(a[2], 1, 1000000, "count");
    long size = num(a[3], 1, 65507, "size"), timeout = num(a[4], 1, 600000, "timeout ms");
    int fd = inet_socket(SOCK_DGRAM, a[0], port, &to);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        printf("udp: connect %s:%ld: %s\n", a[0], port, strerror(errno));
        return 1;
    }
    static uint8_t out[65536], in[65536];
    long echoed = 0, intact = 0, lost = 0;
    for (long i = 0; i < count; i++) {
        for (long k = 0; k < size; k++) out[k] = (uint8_t)(k * 31 + i * 7 + 1);
        if (size >= 4) /* its sequence number, so a late echo of an earlier one is told apart */
            out[0] = (uint8_t)(i >> 24), out[1] = (uint8_t)(i >> 16), out[2] = (uint8_t)(i >> 8),
            out[3] = (uint8_t)i;
        if (send(fd, out, (size_t)size, 0) != size) {
            printf("udp: send %ld: %s\n", i, strerror(errno));
            return 1;
        }
        double t0 = now_ms();
        for (;;) { /* the echo of this datagram */
            double left = timeout - (now_ms() - t0);
            struct pollfd p = { fd, POLLIN, 0 };
            if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0) {
                lost++;
                break;
            }
            ssize_t n = recv(fd, in, sizeof in, 0);
            if (n < 0) {
                printf("udp: receive: %s\n", strerror(errno));
                return 1;
            }
            if (size >= 4 && n >= 4 && memcmp(in, out, 4)) continue; /* a late echo of an earlier datagram */
            echoed++;
            if (n == size && !memcmp(in, out, (size_t)size)) intact++;
            break;
        }
    }
    printf("udp: sent %ld echoed %ld intact %ld lost %ld\n", count, echoed, intact, lost);
    return intact == count ? 0 : 1;
}

static int mode_tcp(char **a)
{
    struct sockaddr_in to;
    long port = num(a[1], 1, 65535, "port"), timeout = num(a[4], 1, 3600, "timeout s");
    int in = open(a[2], O_RDONLY), out = open(a[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        fprintf(stderr, "net-peer: cannot open %s: %s\n", in < 0 ? a[2] : a[3], strerror(errno));
        return 2;
    }
    int fd = inet_socket(SOCK_STREAM, a[0], port, &to);
    double t0 = now_ms();
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        printf("tcp: connect %s:%ld: %s\n", a[0], port, strerror(errno));
        return 1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    static uint8_t buf[1 << 16], rbuf[1 << 16];
    size_t have = 0, off = 0;
    long long sent = 0, received = 0;
    int eof_in = 0, shut = 0;
    double sent_at = 0;
    for (;;) {
        if (now_ms() - t0 > timeout * 1e3) {
            printf("tcp: timeout after %ld s: sent %lld received %lld\n", timeout, sent, received);
            return 1;
        }
        if (off == have && !eof_in) {
            ssize_t n = read(in, buf, sizeof buf);
            if (n < 0) {
                perror("net-peer: read");
                return 1;
            }
            if (n == 0) eof_in = 1;
            have = (size_t)n, off = 0;
        }
        if (eof_in && off == have && !shut) {
            shutdown(fd, SHUT_WR); /* the echo server closes after echoing the last byte */
            shut = 1;
            sent_at = now_ms();
        }
        struct pollfd p = { fd, POLLIN | (off < have ? POLLOUT : 0), 0 };
        if (poll(&p, 1, 1000) <= 0) continue;
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, buf + off, have - off, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN) {
                printf("tcp: send after %lld bytes: %s\n", sent, strerror(errno));
                return 1;
            }
            if (n > 0) off += (size_t)n, sent += n;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
            if (n < 0 && errno != EAGAIN) {
                printf("tcp: receive after %lld bytes: %s\n", received, strerror(errno));
                return 1;
            }
            if (n == 0) break;
            if (n > 0) {
                if (write(out, rbuf, (size_t)n) != n) {
                    perror("net-peer: write");
                    return 1;
                }
                received += n;
            }
        }
    }
    double ms = now_ms() - t0;
    printf("tcp: sent %lld received %lld in %.0f ms (%.1f Mbit/s each way; last byte sent at %.0f ms)\n",
           sent, received, ms, sent * 8 / (ms * 1e3), sent_at - t0);
    close(out);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && !strcmp(argv[1], "arp")) return mode_arp(argv + 2);
    if (argc == 4 && !strcmp(argv[1], "stop")) return mode_stop(argv + 2);
    if (argc == 7 && !strcmp(argv[1], "udp")) return mode_udp(argv + 2);
    if (argc == 7 && !strcmp(argv[1], "tcp")) return mode_tcp(argv + 2);
    return usage();
}
