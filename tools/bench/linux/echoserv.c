/* echoserv: the Linux domU's echo server for the network rows of `npm run bench`
 * (tools/bench/net.ts): the Echo Protocol (RFC 862) on one TCP and UDP port, built as
 * Morgana's echo app (assembly/apps/echo/main.ts) works: one thread, an event loop, each
 * connection reads, writes what it read back in full, and only then reads again; at the
 * peer's EOF it closes. Each UDP datagram goes back to its sender.
 *
 *   echoserv <port>
 *
 * Prints "echoserv: listening on port <port>" once ready, the first 10 connections and
 * errors, and on SIGTERM or SIGINT "echoserv: stop: <n> connections, <b> bytes over TCP,
 * <d> datagrams over UDP, <e> errors" (echo's summary line). Built static on the host by
 * tools/bench/net.ts and put into the Linux guest's initramfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONN 256
#define BUF      65536
#define LOUD     10

struct conn {
    int fd;
    uint8_t *buf;
    size_t have, done; /* bytes read, bytes of them written back */
};

static struct conn conns[MAX_CONN];
static int nconn;
static unsigned long connections, errors, datagrams;
static unsigned long long tcp_bytes;
static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void error(const char *what)
{
    errors++;
    if (errors <= LOUD) printf("echoserv: %s: %s\n", what, strerror(errno));
}

static void drop(int i)
{
    close(conns[i].fd);
    free(conns[i].buf);
    conns[i] = conns[--nconn];
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *end;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || port < 1 || port > 65535) {
        printf("FAIL: usage: echoserv <port 1..65535>\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int us = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (ls < 0 || us < 0) return printf("FAIL: echoserv: socket: %s\n", strerror(errno)), 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0 ||
        bind(us, (struct sockaddr *)&a, sizeof a) < 0)
        return printf("FAIL: echoserv: port %ld: %s\n", port, strerror(errno)), 1;
    printf("echoserv: listening on port %ld\n", port);
    static struct pollfd p[MAX_CONN + 2];
    static uint8_t dgram[65536];
    while (!stop) {
        p[0] = (struct pollfd){ .fd = ls, .events = nconn < MAX_CONN ? POLLIN : 0 };
        p[1] = (struct pollfd){ .fd = us, .events = POLLIN };
        for (int i = 0; i < nconn; i++)
            p[i + 2] = (struct pollfd){ .fd = conns[i].fd,
                                        .events = conns[i].done < conns[i].have ? POLLOUT : POLLIN };
        int n = nconn;
        if (poll(p, (nfds_t)n + 2, -1) < 0) {
            if (errno != EINTR) error("poll");
            continue;
        }
        /* connections from the end, so drop() (which moves the last one into the hole) skips none */
        for (int i = n - 1; i >= 0; i--) {
            struct conn *c = &conns[i];
            if (!p[i + 2].revents) continue;
            if (c->done < c->have) {
                ssize_t w = write(c->fd, c->buf + c->done, c->have - c->done);
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    error("write");
                    drop(i);
                } else if (w > 0 && (c->done += (size_t)w) == c->have) c->done = c->have = 0;
                continue;
            }
            ssize_t r = read(c->fd, c->buf, BUF);
            if (r == 0) drop(i); /* the peer closed its side: everything was echoed */
            else if (r < 0 && errno != EAGAIN && errno != EINTR) {
                error("read");
                drop(i);
            } else if (r > 0) {
                tcp_bytes += (unsigned long long)r;
                c->have = (size_t)r;
                ssize_t w = write(c->fd, c->buf, c->have); /* the common case: all of it at once */
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    error("write");
                    drop(i);
                } else if (w > 0 && (c->done = (size_t)w) == c->have) c->done = c->have = 0;
            }
        }
        if (p[1].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t r = recvfrom(us, dgram, sizeof dgram, 0, (struct sockaddr *)&from, &fl);
            if (r >= 0) {
                datagrams++;
                if (sendto(us, dgram, (size_t)r, 0, (struct sockaddr *)&from, fl) < 0) error("sendto");
            }
        }
        if (p[0].revents & POLLIN) {
            int s = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
            if (s < 0) {
                if (errno != EAGAIN && errno != EINTR) error("accept");
                continue;
            }
            uint8_t *b = malloc(BUF);
            if (!b) {
                close(s);
                errno = ENOMEM;
                error("accept");
                continue;
            }
            conns[nconn++] = (struct conn){ .fd = s, .buf = b };
            connections++;
            if (connections <= LOUD) printf("echoserv: connection %lu\n", connections);
        }
    }
    printf("echoserv: stop: %lu connections, %llu bytes over TCP, %lu datagrams over UDP, %lu errors\n",
           connections, tcp_bytes, datagrams, errors);
    return 0;
}
