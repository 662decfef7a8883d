/* Hypercalls: hypercall N is a 32-byte stub at hypercall_page + N * 32 that Xen wrote
 * at load time. Arguments go in rdi, rsi, rdx, r10, r8; the result comes back in rax;
 * the stub's syscall clobbers rcx and r11. */
#ifndef SHIM_HYPERCALL_H
#define SHIM_HYPERCALL_H

#include "xen.h"

#define _hypercall5(nr, a1, a2, a3, a4, a5)                                                    \
    ({                                                                                         \
        long __res;                                                                            \
        register long __a1 asm("rdi") = (long)(a1);                                            \
        register long __a2 asm("rsi") = (long)(a2);                                            \
        register long __a3 asm("rdx") = (long)(a3);                                            \
        register long __a4 asm("r10") = (long)(a4);                                            \
        register long __a5 asm("r8") = (long)(a5);                                             \
        asm volatile("call hypercall_page + %c[off]"                                           \
                     : "=a"(__res), "+r"(__a1), "+r"(__a2), "+r"(__a3), "+r"(__a4), "+r"(__a5) \
                     : [off] "i"((nr)*32)                                                      \
                     : "memory", "rcx", "r11");                                                \
        __res;                                                                                 \
    })

static inline long hypervisor_mmu_update(struct mmu_update *req, unsigned count)
{
    return _hypercall5(__HYPERVISOR_mmu_update, req, count, 0, DOMID_SELF, 0);
}

static inline long hypervisor_mmuext_op(struct mmuext_op *op, unsigned count)
{
    return _hypercall5(__HYPERVISOR_mmuext_op, op, count, 0, DOMID_SELF, 0);
}

static inline long hypervisor_update_va_mapping(uint64_t va, uint64_t pte, unsigned long flags)
{
    return _hypercall5(__HYPERVISOR_update_va_mapping, va, pte, flags, 0, 0);
}

static inline long hypervisor_set_trap_table(const struct trap_info *table)
{
    return _hypercall5(__HYPERVISOR_set_trap_table, table, 0, 0, 0, 0);
}

/* x86_64: event callback, failsafe callback, syscall entry (unused: 0). */
static inline long hypervisor_set_callbacks(void (*event)(void), void (*failsafe)(void))
{
    return _hypercall5(__HYPERVISOR_set_callbacks, event, failsafe, 0, 0, 0);
}

static inline long hypervisor_sched_op(int cmd, void *arg)
{
    return _hypercall5(__HYPERVISOR_sched_op, cmd, arg, 0, 0, 0);
}

static inline long hypervisor_vcpu_op(int cmd, unsigned vcpu, void *arg)
{
    return _hypercall5(__HYPERVISOR_vcpu_op, cmd, vcpu, arg, 0, 0);
}

static inline long hypervisor_event_channel_op(int cmd, void *arg)
{
    return _hypercall5(__HYPERVISOR_event_channel_op, cmd, arg, 0, 0, 0);
}

static inline long hypervisor_grant_table_op(int cmd, void *arg, unsigned count)
{
    return _hypercall5(__HYPERVISOR_grant_table_op, cmd, arg, count, 0, 0);
}

#endif
