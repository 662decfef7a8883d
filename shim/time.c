/* Time: Xen's PV clock (vcpu_time_info in shared_info) for monotonic and wall time,
 * and sched_block, which sleeps until an event or a deadline with a one-shot timer.
 * rdtsc is the only clock source read directly: Xen publishes how to scale it. */
#include "shim.h"
#include "hypercall.h"

uint64_t boot_ns;        /* monotonic time at the PV entry point */
static uint64_t last_ns; /* the largest value returned: monotonic stays monotonic */

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* Xen's system time at `tsc` (which may precede the record's stamp, as the entry TSC does). */
static uint64_t pvclock_at(uint64_t tsc, int use_now)
{
    volatile struct vcpu_time_info *t = &shared_info->vcpu_info[0].time;
    uint32_t version, mul;
    uint64_t stamp, system;
    int8_t shift;
    do {
        version = t->version;
        barrier(); /* orders the version read before the fields */
        if (use_now) tsc = rdtsc();
        stamp = t->tsc_timestamp;
        system = t->system_time;
        mul = t->tsc_to_system_mul;
        shift = t->tsc_shift;
        barrier(); /* orders the fields before the version re-read */
    } while ((version & 1) || version != t->version);
    /* Signed: the TSC Xen emulates for a PV guest starts near 0, and its first record
     * can carry a stamp just below 0 (seen: 0xffffffffff476f0d); the entry TSC may
     * also precede the stamp. Unsigned "tsc < stamp" would take both for huge gaps. */
    int64_t gap = (int64_t)(tsc - stamp);
    uint64_t delta = gap < 0 ? -(uint64_t)gap : (uint64_t)gap;
    delta = shift < 0 ? delta >> -shift : delta << shift;
    uint64_t ns = (uint64_t)(((unsigned __int128)delta * mul) >> 32);
    return gap < 0 ? system - ns : system + ns;
}

void pvclock_init(uint64_t entry_tsc)
{
    boot_ns = pvclock_at(entry_tsc, 0);
    last_ns = boot_ns;
}

uint64_t pvclock_monotonic(void)
{
    uint64_t now = pvclock_at(0, 1);
    if (now < last_ns) now = last_ns; /* records from different updates may disagree slightly */
    last_ns = now;
    return now;
}

/* Wall clock = Xen's wall-clock time at system time 0, plus system time. */
uint64_t pvclock_wall(void)
{
    volatile struct shared_info *s = shared_info;
    uint32_t version, sec, nsec, sec_hi;
    do {
        version = s->wc_version;
        barrier(); /* orders the version read before the fields */
        sec = s->wc_sec;
        nsec = s->wc_nsec;
        sec_hi = s->wc_sec_hi;
        barrier(); /* orders the fields before the version re-read */
    } while ((version & 1) || version != s->wc_version);
    return ((uint64_t)sec_hi << 32 | sec) * 1000000000ULL + nsec + pvclock_monotonic();
}

/* ABI.md §3.4, §8.7: 1 when a module port is pending and unmasked (at once if one is
 * already), 0 once the deadline has passed. Other wakeups (the shim's own ports, Xen's
 * timer firing up to its slop before the deadline) only loop, so the result matches the
 * harness's. Upcalls stay masked except inside SCHEDOP_block. */
int sched_block(int64_t deadline)
{
    for (;;) {
        evtchn_ack(); /* from here, any new event raises evtchn_upcall_pending again */
        if (evtchn_event_pending()) return 1;
        if ((uint64_t)deadline <= pvclock_monotonic()) return 0;
        long rc;
        if (deadline != INT64_MAX) {
            /* flags 0: a deadline that passed meanwhile fires at once instead of failing */
            struct vcpu_set_singleshot_timer timer = { .timeout_abs_ns = deadline, .flags = 0 };
            rc = hypervisor_vcpu_op(VCPUOP_set_singleshot_timer, 0, &timer);
            if (rc) shim_fatal("VCPUOP_set_singleshot_timer", rc);
        } else {
            rc = hypervisor_vcpu_op(VCPUOP_stop_singleshot_timer, 0,
                                    0); /* an earlier deadline must not wake us */
            if (rc) shim_fatal("VCPUOP_stop_singleshot_timer", rc);
        }
        /* Unmasks upcalls and checks for pending events atomically, then sleeps; an event
         * wakes the vcpu and its upcall runs before the hypercall returns. */
        hypervisor_sched_op(SCHEDOP_block, 0);
        evtchn_mask_upcalls();
    }
}
