/* The boot sequence and the way out. */
#include "shim.h"
#include "hypercall.h"

struct start_info *start_info;
struct shared_info *shared_info;

/* Called by head.S on our own stack: Xen's start_info, Xen's boot stack pointer (it
 * marks the end of the start-of-day area) and the TSC read at the entry point. */
NORETURN void shim_main(struct start_info *si, uint64_t boot_rsp, uint64_t entry_tsc)
{
    start_info = si;
    console_init();                     /* first: from here on, errors can be printed */
    shared_info = mm_map_shared_info(); /* the clock lives there */
    pvclock_init(entry_tsc);
    traps_init();
    mm_init(boot_rsp);
    evtchn_init();
    app_run();
    shim_shutdown(SHUTDOWN_poweroff); /* ABI.md §1: _start returned */
}

/* Flushes the console and asks Xen to end the domain; never returns. */
NORETURN void shim_shutdown(unsigned reason)
{
    console_flush();
    struct sched_shutdown sd = { .reason = reason };
    for (;;) hypervisor_sched_op(SCHEDOP_shutdown, &sd);
}

/* A boot-time failure: say precisely what failed and crash the domain. */
NORETURN void shim_fatal(const char *what, long rc)
{
    printk("FATAL: %s failed: %ld\n", what, rc);
    shim_shutdown(SHUTDOWN_crash);
}
