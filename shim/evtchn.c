/* Event channels: notify a port, bind a VIRQ, and the upcall Xen enters (on the
 * current stack, upcalls masked) when a port becomes pending while upcalls are
 * unmasked; in v1 that happens only inside SCHEDOP_block (time.c). */
#include "shim.h"
#include "hypercall.h"

volatile int evtchn_event_seen;   /* an upcall ran: for callers that wait on events */

void evtchn_notify(uint32_t port)
{
    struct evtchn_send send = { .port = port };
    hypervisor_event_channel_op(EVTCHNOP_send, &send);
}

uint32_t evtchn_bind_virq(uint32_t virq)
{
    struct evtchn_bind_virq bind = { .virq = virq, .vcpu = 0 };
    long rc = hypervisor_event_channel_op(EVTCHNOP_bind_virq, &bind);
    if (rc) shim_fatal("EVTCHNOP_bind_virq", rc);
    return bind.port;
}

void evtchn_mask_upcalls(void)
{
    shared_info->vcpu_info[0].evtchn_upcall_mask = 1;
    barrier();                 /* orders the mask before whatever runs next */
}

/* The upcall: acknowledge every pending, unmasked port. Drivers of later issues will
 * dispatch here; v1 only needs the wakeup itself. */
void evtchn_upcall(void)
{
    volatile struct vcpu_info *v = &shared_info->vcpu_info[0];
    v->evtchn_upcall_pending = 0;
    barrier();                 /* orders the flag clear before reading the selector (Xen sets them in the reverse order) */
    uint64_t sel = __atomic_exchange_n(&shared_info->vcpu_info[0].evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned word = __builtin_ctzll(sel);
        sel &= sel - 1;
        uint64_t ready = shared_info->evtchn_pending[word] & ~shared_info->evtchn_mask[word];
        __atomic_fetch_and(&shared_info->evtchn_pending[word], ~ready, __ATOMIC_SEQ_CST);
    }
    evtchn_event_seen = 1;
}

/* The timer VIRQ is what wakes sched_block at its deadline; Xen's default 10 ms
 * periodic timer would only add spurious wakeups, so it is stopped. */
void evtchn_init(void)
{
    evtchn_mask_upcalls();
    evtchn_bind_virq(VIRQ_TIMER);
    long rc = hypervisor_vcpu_op(VCPUOP_stop_periodic_timer, 0, 0);
    if (rc) shim_fatal("VCPUOP_stop_periodic_timer", rc);
}
