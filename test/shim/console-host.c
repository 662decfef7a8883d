/* shim/console.c on the host, against a simulated console backend (test/shim/console.test.ts):
 * each SCHEDOP_yield advances the PV clock by 1 ms and lets the backend consume `rate` bytes.
 * Prints one "key: value" line per fact the test checks. */
#include <stdio.h>
#include <string.h>
#include "shim.h"
#include "hypercall.h"

struct start_info *start_info;
struct shared_info *shared_info;
static struct start_info si;
static struct xencons_interface ring;
static uint64_t clock_ns = 1000000000ULL;
static unsigned rate;
static unsigned long yields;
static char out[1 << 20];
static size_t out_len;

void *mm_mfn_to_virt(uint64_t mfn)
{
    (void)mfn;
    return &ring;
}
long evtchn_send(uint32_t port)
{
    (void)port;
    return 0;
}
uint64_t pvclock_monotonic(void) { return clock_ns; }

static void consume(unsigned n)
{
    while (n-- && ring.out_cons != ring.out_prod)
        out[out_len++] = ring.out[ring.out_cons++ % sizeof ring.out];
}

long hypervisor_sched_op(int cmd, void *arg)
{
    (void)arg;
    if (cmd == SCHEDOP_yield) {
        yields++;
        clock_ns += 1000000;
        consume(rate);
    }
    return 0;
}

static void fill_write(char c, size_t n)
{
    static char buf[1 << 16];
    memset(buf, c, n);
    console_ring_write(buf, n);
}

/* Output since `from`, runs of one character shown as "<count>x<char>". */
static void show(const char *key, size_t from)
{
    printf("%s: ", key);
    for (size_t i = from; i < out_len;) {
        size_t j = i;
        while (j < out_len && out[j] == out[i]) j++;
        if (j - i > 3) {
            printf("<%zux%c>", j - i, out[i]);
            i = j;
        } else if (out[i] == '\r') {
            printf("\\r");
            i++;
        } else if (out[i] == '\n') {
            printf("\\n");
            i++;
        } else putchar(out[i++]);
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    start_info = &si;
    shared_info = (struct shared_info *)&si; /* only tested for NULL: the PV clock runs */
    console_init();
    if (!strcmp(mode, "stopped")) {
        fill_write('a', 3000); /* the backend never consumes: 2048 fit, the wait is bounded */
        printf("yields: %lu\n", yields);
        printf("in ring: %u\n", ring.out_prod - ring.out_cons);
        unsigned long y = yields;
        fill_write('b', 100); /* stalled: dropped at once, no wait */
        printf("second write yields: %lu\n", yields - y);
        consume(~0u); /* the backend comes back */
        size_t from = out_len;
        console_ring_write("c\n", 2);
        consume(~0u);
        show("after", from);
    } else if (!strcmp(mode, "slow")) {
        rate = 1; /* one byte per yield: slow, but never stalled */
        fill_write('x', 5000);
        console_flush();
        consume(~0u);
        show("out", 0);
    } else if (!strcmp(mode, "corrupt")) {
        ring.out_cons = 100000; /* a backend that wrote garbage into out_cons */
        fill_write('a', 10);
        printf("yields: %lu\n", yields);
        unsigned long y = yields;
        fill_write('b', 10);
        console_flush();
        printf("then yields: %lu\n", yields - y);
    } else if (!strcmp(mode, "early")) {
        shared_info = 0; /* before the PV clock runs: bounded in yields */
        fill_write('a', 3000);
        printf("yields: %lu\n", yields);
    } else if (!strcmp(mode, "flush")) {
        fill_write('a', 2500);
        consume(~0u);
        size_t from = out_len;
        console_flush(); /* the marker goes out even when nothing follows */
        consume(~0u);
        show("flushed", from);
    } else return 2;
    return 0;
}
