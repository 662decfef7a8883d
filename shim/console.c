/* The PV console: the out ring of the page named in start_info, drained by xenconsoled
 * in dom0 (HYPERVISOR_console_io is refused to a domU on a release Xen).
 * The guest produces into out[] and advances out_prod; the backend consumes and
 * advances out_cons; both are free-running counters, indices are taken modulo the size.
 *
 * A full ring is waited on, but not forever (ABI.md §3.1): after CONSOLE_STALL_NS
 * without the backend consuming a byte the console is stalled, and output is dropped
 * and counted instead of waited for; once the ring has room again a marker line
 * says how many bytes were lost, and output goes on. */
#include <stdarg.h>
#include "shim.h"
#include "hypercall.h"

#define RING_SIZE        sizeof(((struct xencons_interface *)0)->out)
/* How long console_flush waits for the backend (yields) before giving up. */
#define FLUSH_YIELDS     100000
/* How long a write waits for a full ring to drain a byte before the console counts as stalled. */
#define CONSOLE_STALL_NS 5000000000ULL
/* The same bound in yields, before the PV clock runs (shared_info not mapped yet). */
#define STALL_YIELDS     100000
/* Room the dropped-output marker needs (its text, a 20-digit count and \r\n twice). */
#define MARKER_ROOM      96

static volatile struct xencons_interface *console_ring;
static uint32_t console_evtchn;
static int console_stalled;      /* the backend stopped consuming: writes do not wait */
static uint64_t console_dropped; /* bytes dropped while stalled, not yet reported */

void console_init(void)
{
    console_ring = mm_mfn_to_virt(start_info->console.domU.mfn);
    console_evtchn = start_info->console.domU.evtchn;
}

/* Publishes out_prod and kicks the backend. */
static void console_ring_push(uint32_t prod)
{
    barrier(); /* orders the bytes in out[] before the index that exposes them */
    console_ring->out_prod = prod;
    evtchn_send(console_evtchn);
}

/* Waits for the backend to consume from a full ring: 1 once there is room, 0 when none
 * came for CONSOLE_STALL_NS (or STALL_YIELDS yields before the PV clock runs). An honest
 * backend that consumes anything makes room, so only a stopped or lying one times out. */
static int console_wait_room(uint32_t prod)
{
    uint64_t start = shared_info ? pvclock_monotonic() : 0;
    for (unsigned yields = 1;; yields++) {
        console_ring_push(prod); /* full: let xenconsoled drain it */
        hypervisor_sched_op(SCHEDOP_yield, 0);
        if (prod - console_ring->out_cons < RING_SIZE) return 1;
        if (shared_info ? pvclock_monotonic() - start >= CONSOLE_STALL_NS : yields >= STALL_YIELDS) return 0;
    }
}

/* Stalled: writes the dropped-output marker once the ring has room for it, and resumes. */
static void console_try_resume(void)
{
    uint32_t prod = console_ring->out_prod;
    uint32_t used = prod - console_ring->out_cons;
    if (used > RING_SIZE || RING_SIZE - used < MARKER_ROOM) return; /* still full, or out_cons is corrupt */
    char num[24];
    int n = 0;
    uint64_t v = console_dropped;
    do {
        num[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    const char *pre = "\r\n[console: ", *post = " bytes dropped: the console backend stopped reading]\r\n";
    while (*pre) console_ring->out[prod++ % RING_SIZE] = *pre++;
    while (n > 0) console_ring->out[prod++ % RING_SIZE] = num[--n];
    while (*post) console_ring->out[prod++ % RING_SIZE] = *post++;
    console_ring_push(prod);
    console_stalled = 0;
    console_dropped = 0;
}

/* Writes every byte, \n as \r\n; when the ring is full, waits (bounded) for the backend. */
void console_ring_write(const char *buf, size_t len)
{
    if (!console_ring) return; /* too early: nowhere to write */
    if (console_stalled) console_try_resume();
    if (console_stalled) {
        console_dropped += len;
        return;
    }
    uint32_t prod = console_ring->out_prod;
    int cr_done = 0; /* the \r of the current \n is in the ring */
    for (size_t i = 0; i < len;) {
        if (prod - console_ring->out_cons >= RING_SIZE && !console_wait_room(prod)) {
            console_stalled = 1; /* the rest, and what follows until there is room, is dropped */
            console_dropped += len - i;
            break;
        }
        if (buf[i] == '\n' && !cr_done) {
            console_ring->out[prod++ % RING_SIZE] = '\r';
            cr_done = 1;
            continue;
        }
        console_ring->out[prod++ % RING_SIZE] = buf[i++];
        cr_done = 0;
    }
    console_ring_push(prod);
}

/* Waits (bounded) until the backend has consumed everything: before shutdown and traps. */
void console_flush(void)
{
    if (!console_ring) return;
    if (console_stalled) console_try_resume();
    if (console_stalled) return; /* the backend stopped reading: nothing to wait for */
    for (int i = 0; i < FLUSH_YIELDS && console_ring->out_cons != console_ring->out_prod; i++) {
        evtchn_send(console_evtchn);
        hypervisor_sched_op(SCHEDOP_yield, 0);
    }
}

/* printk: %s %c %d %u %x with an optional l, a field width and 0 padding; no floats. */
static void put_num(uint64_t v, int neg, unsigned base, int width, char pad)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg) tmp[n++] = '-';
    while (n < width && n < (int)sizeof(tmp)) tmp[n++] = pad;
    char out[24];
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    console_ring_write(out, n);
}

void printk(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    while (*fmt) {
        const char *lit = fmt;
        while (*fmt && *fmt != '%') fmt++;
        console_ring_write(lit, fmt - lit);
        if (!*fmt) break;
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        if (*fmt == 'l') {
            lng = 1;
            fmt++;
        }
        char c = *fmt ? *fmt++ : 0;
        if (c == 's') {
            const char *s = va_arg(ap, const char *);
            console_ring_write(s, strlen(s));
        } else if (c == 'c') {
            char ch = (char)va_arg(ap, int);
            console_ring_write(&ch, 1);
        } else if (c == 'd') {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, width, pad);
        } else if (c == 'u' || c == 'x') {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_num(v, 0, c == 'u' ? 10 : 16, width, pad);
        } else if (c) console_ring_write(&c, 1);
    }
    va_end(ap);
}
