/* The slice of Xen's public ABI (x86_64 PV) the shim uses, re-declared here, once.
 * Each block names the Xen public header it mirrors; layouts are the 64-bit ones.
 * The numbers come first and also serve the assembly files (head.S, entry.S); the
 * structures and C-only values follow under !__ASSEMBLER__. */
#ifndef SHIM_XEN_H
#define SHIM_XEN_H

/* xen/include/public/xen.h: hypercall numbers */
#define __HYPERVISOR_set_trap_table    0
#define __HYPERVISOR_mmu_update        1
#define __HYPERVISOR_set_callbacks     4
#define __HYPERVISOR_update_va_mapping 14
#define __HYPERVISOR_console_io        18
#define __HYPERVISOR_grant_table_op    20
#define __HYPERVISOR_iret              23
#define __HYPERVISOR_vcpu_op           24
#define __HYPERVISOR_mmuext_op         26
#define __HYPERVISOR_sched_op          29
#define __HYPERVISOR_event_channel_op  32

/* xen/include/public/elfnote.h */
#define XEN_ELFNOTE_ENTRY          1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE      3
#define XEN_ELFNOTE_PADDR_OFFSET   4
#define XEN_ELFNOTE_XEN_VERSION    5
#define XEN_ELFNOTE_GUEST_OS       6
#define XEN_ELFNOTE_GUEST_VERSION  7
#define XEN_ELFNOTE_LOADER         8
#define XEN_ELFNOTE_FEATURES       10

#ifndef __ASSEMBLER__

#include <stdint.h>

/* xen/include/public/xen.h: ids from DOMID_FIRST_RESERVED up name no real domain */
#define DOMID_FIRST_RESERVED 0x7ff0U
#define DOMID_SELF           0x7ff0U

/* xen/include/public/xen.h: mmu_update() request types and its struct */
#define MMU_NORMAL_PT_UPDATE 0
struct mmu_update {
    uint64_t ptr; /* machine address of the PTE | request type */
    uint64_t val; /* new PTE */
};

/* xen/include/public/xen.h: mmuext_op() commands and its struct */
#define MMUEXT_TLB_FLUSH_LOCAL 6
#define MMUEXT_INVLPG_LOCAL    7
#define MMUEXT_CLEAR_PAGE      16
struct mmuext_op {
    uint32_t cmd;
    union {
        uint64_t mfn;
        uint64_t linear_addr;
    } arg1;
    union {
        uint32_t nr_ents;
        const void *vcpumask;
        uint64_t src_mfn;
    } arg2;
};

/* xen/include/public/xen.h: update_va_mapping() flags */
#define UVMF_NONE   0
#define UVMF_INVLPG 2

/* xen/include/public/arch-x86/xen-x86_64.h: the guest kernel's flat segments and the
 * machine-to-phys table mapped read-only at HYPERVISOR_VIRT_START */
#define FLAT_KERNEL_CS64     0xe033
#define MACH2PHYS_VIRT_START 0xffff800000000000UL
/* Xen's own range: guests may not map L4 slots 256..271 */
#define HYPERVISOR_VIRT_END  0xffff880000000000UL

/* xen/include/public/arch-x86/xen.h: one trap_table entry */
struct trap_info {
    uint8_t vector;
    uint8_t flags; /* 0-1: privilege level; 2: mask events on entry */
    uint16_t cs;
    uint64_t address;
};
#define TI_MASK_EVENTS 4

/* xen/include/public/arch-x86/xen.h */
struct arch_vcpu_info {
    uint64_t cr2; /* the faulting address of the last page fault */
    uint64_t pad;
};

/* xen/include/public/xen.h */
struct vcpu_time_info {
    uint32_t version; /* odd while Xen updates the record */
    uint32_t pad0;
    uint64_t tsc_timestamp; /* TSC at the last update */
    uint64_t system_time;   /* ns since host boot at the last update */
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    int8_t flags;
    uint8_t pad1[2];
};

/* xen/include/public/xen.h */
struct vcpu_info {
    uint8_t evtchn_upcall_pending;
    uint8_t evtchn_upcall_mask;
    uint64_t evtchn_pending_sel;
    struct arch_vcpu_info arch;
    struct vcpu_time_info time;
};

/* xen/include/public/xen.h (x86: 32 legacy vcpus, 64-bit event words) */
struct shared_info {
    struct vcpu_info vcpu_info[32];
    uint64_t evtchn_pending[64];
    uint64_t evtchn_mask[64];
    uint32_t wc_version; /* odd while Xen updates the wall clock */
    uint32_t wc_sec;
    uint32_t wc_nsec;
    uint32_t wc_sec_hi;
    /* struct arch_shared_info follows: unused */
};

/* xen/include/public/xen.h */
struct start_info {
    char magic[32]; /* "xen-<version>-<platform>" */
    uint64_t nr_pages;
    uint64_t shared_info; /* MACHINE address of the shared info page */
    uint32_t flags;       /* SIF_* */
    uint64_t store_mfn;
    uint32_t store_evtchn;
    union {
        struct {
            uint64_t mfn;
            uint32_t evtchn;
        } domU;
        struct {
            uint32_t info_off;
            uint32_t info_size;
        } dom0;
    } console;
    uint64_t pt_base; /* VA of the initial L4 */
    uint64_t nr_pt_frames;
    uint64_t mfn_list; /* VA of the p2m array */
    uint64_t mod_start;
    uint64_t mod_len;
    char cmd_line[1024];
    uint64_t first_p2m_pfn;
    uint64_t nr_p2m_frames;
};

/* xen/include/public/sched.h */
#define SCHEDOP_yield     0
#define SCHEDOP_block     1
#define SCHEDOP_shutdown  2
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_reboot   1
#define SHUTDOWN_suspend  2
#define SHUTDOWN_crash    3
#define SHUTDOWN_watchdog 4
struct sched_shutdown {
    uint32_t reason;
};

/* xen/include/public/vcpu.h */
#define VCPUOP_stop_periodic_timer   7
#define VCPUOP_set_singleshot_timer  8
#define VCPUOP_stop_singleshot_timer 9
struct vcpu_set_singleshot_timer {
    uint64_t timeout_abs_ns; /* Xen system time */
    uint32_t flags;
};

/* xen/include/public/event_channel.h (2-level ABI: 64 words of 64 ports on x86-64) */
#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_virq        1
#define EVTCHNOP_close            3
#define EVTCHNOP_send             4
#define EVTCHNOP_status           5
#define EVTCHNOP_alloc_unbound    6
#define EVTCHNOP_unmask           9
#define EVTCHN_2L_NR_CHANNELS     4096
#define EVTCHNSTAT_unbound        1
struct evtchn_bind_virq {
    uint32_t virq;
    uint32_t vcpu;
    uint32_t port;
};
struct evtchn_send {
    uint32_t port;
};
struct evtchn_close {
    uint32_t port;
};
struct evtchn_unmask {
    uint32_t port;
};
struct evtchn_alloc_unbound {
    uint16_t dom, remote_dom;
    uint32_t port;
};
struct evtchn_bind_interdomain {
    uint16_t remote_dom;
    uint32_t remote_port;
    uint32_t local_port;
};
struct evtchn_status {
    uint16_t dom;
    uint32_t port;
    uint32_t status; /* EVTCHNSTAT_* */
    uint32_t vcpu;
    union {
        struct {
            uint16_t dom;
        } unbound; /* the domain allowed to bind, DOMID_SELF resolved */
        struct {
            uint16_t dom;
            uint32_t port;
        } interdomain;
        uint32_t pirq, virq;
    } u;
};

/* xen/include/public/grant_table.h: grant tables v1 */
#define GNTTABOP_map_grant_ref     0
#define GNTTABOP_unmap_grant_ref   1
#define GNTTABOP_setup_table       2
#define GNTTABOP_query_size        6
#define GNTTAB_NR_RESERVED_ENTRIES 8
struct grant_entry_v1 {
    uint16_t flags; /* GTF_*: written last by the granter, updated by Xen */
    uint16_t domid; /* the domain allowed to map */
    uint32_t frame; /* the machine frame granted */
};
#define GTF_permit_access 1
#define GTF_readonly      (1U << 2)
#define GTF_reading       (1U << 3) /* set by Xen while the grantee maps it */
#define GTF_writing       (1U << 4)
#define GNTMAP_host_map   (1U << 1)
#define GNTMAP_readonly   (1U << 2)
struct gnttab_map_grant_ref {
    uint64_t host_addr; /* without GNTMAP_contains_pte: a virtual address */
    uint32_t flags;     /* GNTMAP_* */
    uint32_t ref;
    uint16_t dom;
    int16_t status; /* GNTST_* */
    uint32_t handle;
    uint64_t dev_bus_addr;
};
struct gnttab_unmap_grant_ref {
    uint64_t host_addr;
    uint64_t dev_bus_addr;
    uint32_t handle;
    int16_t status;
};
struct gnttab_setup_table {
    uint16_t dom;
    uint32_t nr_frames;
    int16_t status;
    uint64_t *frame_list; /* XEN_GUEST_HANDLE(xen_pfn_t): filled with frames */
};
struct gnttab_query_size {
    uint16_t dom;
    uint32_t nr_frames;
    uint32_t max_nr_frames;
    int16_t status;
};
#define GNTST_okay              0
#define GNTST_general_error     (-1)
#define GNTST_bad_domain        (-2)
#define GNTST_bad_gntref        (-3)
#define GNTST_bad_handle        (-4)
#define GNTST_bad_virt_addr     (-5)
#define GNTST_no_device_space   (-7)
#define GNTST_permission_denied (-8)
#define GNTST_eagain            (-12)

/* xen/include/public/xen.h */
#define VIRQ_TIMER 0

/* xen/include/public/io/console.h */
struct xencons_interface {
    char in[1024];
    char out[2048];
    uint32_t in_cons, in_prod;
    uint32_t out_cons, out_prod;
};

/* xen/include/public/errno.h */
#define XEN_EPERM  1
#define XEN_ESRCH  3
#define XEN_EIO    5
#define XEN_EAGAIN 11
#define XEN_ENOMEM 12
#define XEN_EFAULT 14
#define XEN_EBUSY  16
#define XEN_EINVAL 22
#define XEN_ENOSPC 28
#define XEN_ENOSYS 38

/* x86 page-table entry bits (Intel SDM vol. 3, 4.5) as Xen PV expects them */
#define PTE_P    (1UL << 0)
#define PTE_RW   (1UL << 1)
#define PTE_US   (1UL << 2) /* Xen forces it on for 64-bit PV kernels anyway */
#define PTE_A    (1UL << 5)
#define PTE_D    (1UL << 6)
#define PTE_PS   (1UL << 7)
#define PTE_NX   (1UL << 63)
#define PTE_ADDR 0x000ffffffffff000UL

#endif /* !__ASSEMBLER__ */

#endif
