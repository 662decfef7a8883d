/* Event channels over Xen's 2-level ABI: the shim's own ports (timer VIRQ, console),
 * the module's ports (ABI.md §8), and the upcall Xen enters (on the current stack,
 * upcalls masked) when a port becomes pending while upcalls are unmasked, which
 * happens only inside SCHEDOP_block (time.c).
 *
 * Ports are the module's (module_ports: xenstore's, and those it allocated or bound)
 * or the shim's. The upcall clears only the shim's pending bits; a module port stays
 * pending until evtchn_poll takes it, and sched_block checks for one before sleeping,
 * because Xen raises the upcall only when a port goes from idle to pending. */
#include "shim.h"
#include "hypercall.h"

#define NR_WORDS (EVTCHN_2L_NR_CHANNELS / 64)

volatile int evtchn_event_seen; /* an upcall ran: for callers that wait on events */
uint16_t evtchn_self_domid;     /* our domain id, learnt from Xen at boot */
static uint64_t module_ports[NR_WORDS];

static int module_port(uint32_t port)
{
    return port > 0 && port < EVTCHN_2L_NR_CHANNELS && (module_ports[port / 64] >> (port % 64)) & 1;
}

/* A new port starts as the harness's do: unmasked, nothing pending. */
static int module_port_add(uint32_t port)
{
    if (port >= EVTCHN_2L_NR_CHANNELS) return -XEN_ENOSPC; /* not reachable in 2-level shared_info */
    uint64_t bit = 1UL << (port % 64);
    __atomic_fetch_and(&shared_info->evtchn_pending[port / 64], ~bit, __ATOMIC_SEQ_CST);
    __atomic_fetch_and(&shared_info->evtchn_mask[port / 64], ~bit, __ATOMIC_SEQ_CST);
    module_ports[port / 64] |= bit;
    return port;
}

/* EVTCHNOP_send on any port, unchecked: the shim's console uses it. */
long evtchn_send(uint32_t port)
{
    struct evtchn_send send = { .port = port };
    return hypervisor_event_channel_op(EVTCHNOP_send, &send);
}

uint32_t evtchn_bind_virq(uint32_t virq)
{
    struct evtchn_bind_virq bind = { .virq = virq, .vcpu = 0 };
    long rc = hypervisor_event_channel_op(EVTCHNOP_bind_virq, &bind);
    if (rc) shim_fatal("EVTCHNOP_bind_virq", rc);
    return bind.port;
}

/* §8.1; EVTCHNOP_alloc_unbound does not check remote_dom, so the shim does (-ESRCH). */
int evtchn_alloc_unbound(uint32_t remote_domid)
{
    if (remote_domid != DOMID_SELF && !xen_domain_exists(remote_domid)) return -XEN_ESRCH;
    struct evtchn_alloc_unbound op = { .dom = DOMID_SELF, .remote_dom = remote_domid };
    long rc = hypervisor_event_channel_op(EVTCHNOP_alloc_unbound, &op);
    return rc ? (int)rc : module_port_add(op.port);
}

/* §8.2; Xen returns -ESRCH and -EINVAL (not unbound for us) itself. */
int evtchn_bind_interdomain(uint32_t remote_domid, uint32_t remote_port)
{
    if (remote_domid > 0xffff) return -XEN_ESRCH;
    if (remote_port >= EVTCHN_2L_NR_CHANNELS) return -XEN_EINVAL;
    struct evtchn_bind_interdomain op = { .remote_dom = remote_domid, .remote_port = remote_port };
    long rc = hypervisor_event_channel_op(EVTCHNOP_bind_interdomain, &op);
    return rc ? (int)rc : module_port_add(op.local_port);
}

/* §8.3; Xen drops a send on an unbound port and returns 0. */
int evtchn_notify(uint32_t port) { return module_port(port) ? (int)evtchn_send(port) : -XEN_EINVAL; }

/* §8.4: the mask bit is ours to set (Xen only reads it). */
int evtchn_mask(uint32_t port)
{
    if (!module_port(port)) return -XEN_EINVAL;
    __atomic_fetch_or(&shared_info->evtchn_mask[port / 64], 1UL << (port % 64), __ATOMIC_SEQ_CST);
    return 0;
}

/* §8.4: EVTCHNOP_unmask clears the mask bit and, if the port is pending, raises the
 * selector and evtchn_upcall_pending, so the event is not lost. */
int evtchn_unmask(uint32_t port)
{
    if (!module_port(port)) return -XEN_EINVAL;
    struct evtchn_unmask op = { .port = port };
    return (int)hypervisor_event_channel_op(EVTCHNOP_unmask, &op);
}

/* §8.5; the boot ports stay open (the shim's console depends on its own). */
int evtchn_close(uint32_t port)
{
    if (!module_port(port) || port == start_info->store_evtchn) return -XEN_EINVAL;
    struct evtchn_close op = { .port = port };
    long rc = hypervisor_event_channel_op(EVTCHNOP_close, &op);
    if (rc) return (int)rc;
    module_ports[port / 64] &= ~(1UL << (port % 64));
    __atomic_fetch_and(&shared_info->evtchn_pending[port / 64], ~(1UL << (port % 64)), __ATOMIC_SEQ_CST);
    return 0;
}

/* §8.6: takes up to `max` pending unmasked module ports, lowest first. Each bit is taken
 * with an atomic fetch-and, so a bit Xen sets meanwhile is taken now or left for later. */
int evtchn_poll(uint32_t *out, uint32_t max)
{
    uint32_t n = 0;
    for (unsigned w = 0; w < NR_WORDS && n < max; w++) {
        uint64_t ready = shared_info->evtchn_pending[w] & ~shared_info->evtchn_mask[w] & module_ports[w];
        while (ready && n < max) {
            uint64_t bit = ready & -ready;
            ready &= ready - 1;
            if (__atomic_fetch_and(&shared_info->evtchn_pending[w], ~bit, __ATOMIC_SEQ_CST) & bit)
                out[n++] = w * 64 + __builtin_ctzll(bit);
        }
    }
    return n;
}

/* Is a module port pending and unmasked (an event for block(), ABI.md §8.7)? */
int evtchn_event_pending(void)
{
    for (unsigned w = 0; w < NR_WORDS; w++)
        if (shared_info->evtchn_pending[w] & ~shared_info->evtchn_mask[w] & module_ports[w]) return 1;
    return 0;
}

void evtchn_mask_upcalls(void)
{
    shared_info->vcpu_info[0].evtchn_upcall_mask = 1;
    barrier(); /* orders the mask before whatever runs next */
}

/* Acknowledges the upcall state: clears evtchn_upcall_pending, the selector and the
 * pending bits of every port that is not the module's (the timer VIRQ, the console);
 * the module's stay for evtchn_poll. Runs with upcalls masked: in the upcall, and in
 * sched_block before it looks for events, so that a stale evtchn_upcall_pending left by
 * an event already polled does not end the next SCHEDOP_block at once. */
void evtchn_ack(void)
{
    volatile struct vcpu_info *v = &shared_info->vcpu_info[0];
    v->evtchn_upcall_pending = 0;
    barrier(); /* orders the flag clear before reading the selector (Xen sets them in the reverse order) */
    uint64_t sel = __atomic_exchange_n(&shared_info->vcpu_info[0].evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned word = __builtin_ctzll(sel);
        sel &= sel - 1;
        uint64_t shim_ports = shared_info->evtchn_pending[word] & ~module_ports[word];
        if (shim_ports) __atomic_fetch_and(&shared_info->evtchn_pending[word], ~shim_ports, __ATOMIC_SEQ_CST);
    }
}

void evtchn_upcall(void)
{
    evtchn_ack();
    evtchn_event_seen = 1;
}

/* Our domid: Xen resolves DOMID_SELF in an unbound port's remote_dom, and
 * EVTCHNOP_status reports it (gnttab.c needs it for grants to DOMID_SELF). */
static void evtchn_learn_domid(void)
{
    struct evtchn_alloc_unbound alloc = { .dom = DOMID_SELF, .remote_dom = DOMID_SELF };
    long rc = hypervisor_event_channel_op(EVTCHNOP_alloc_unbound, &alloc);
    if (rc) shim_fatal("EVTCHNOP_alloc_unbound (learning our domid)", rc);
    struct evtchn_status status = { .dom = DOMID_SELF, .port = alloc.port };
    rc = hypervisor_event_channel_op(EVTCHNOP_status, &status);
    if (rc || status.status != EVTCHNSTAT_unbound) shim_fatal("EVTCHNOP_status (learning our domid)", rc);
    evtchn_self_domid = status.u.unbound.dom;
    struct evtchn_close close = { .port = alloc.port };
    hypervisor_event_channel_op(EVTCHNOP_close, &close);
}

/* The timer VIRQ is what wakes sched_block at its deadline; Xen's default 10 ms
 * periodic timer would only add spurious wakeups, so it is stopped. */
void evtchn_init(void)
{
    evtchn_mask_upcalls();
    evtchn_bind_virq(VIRQ_TIMER);
    long rc = hypervisor_vcpu_op(VCPUOP_stop_periodic_timer, 0, 0);
    if (rc) shim_fatal("VCPUOP_stop_periodic_timer", rc);
    evtchn_learn_domid();
    /* xenstore's port is the module's (ABI.md §7.1): unmasked, its pending bit kept. */
    uint64_t bit = 1UL << (start_info->store_evtchn % 64);
    __atomic_fetch_and(&shared_info->evtchn_mask[start_info->store_evtchn / 64], ~bit, __ATOMIC_SEQ_CST);
    module_ports[start_info->store_evtchn / 64] |= bit;
}
