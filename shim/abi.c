/* The import ABI v1 (shim/ABI.md §3), as wasm2c 1.0.32 names the imports of module
 * "morgana": Z_morganaZ_<name>, with the importing instance's context pointer first. */
#include <string.h>
#include "shim.h"

#define EFAULT 14
#define EINVAL 22
#define BOOTINFO_SIZE 64
#define PLATFORM_XEN_PV 1

struct Z_morgana_instance_t;
typedef struct Z_morgana_instance_t ctx_t;

/* A (ptr, len) range entirely inside the memory, or 0 (ABI.md §2). */
static uint8_t *wasm_range(uint32_t ptr, uint32_t len)
{
    if ((uint64_t)ptr + len > wasm_memory_size) return 0;
    return wasm_memory_data + ptr;
}

/* §3.1 */
uint32_t Z_morganaZ_console_write(ctx_t *ctx, uint32_t buf, uint32_t len)
{
    (void)ctx;
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -EFAULT;
    console_ring_write((const char *)p, len);
    return len;
}

/* §3.2 */
uint64_t Z_morganaZ_clock_monotonic(ctx_t *ctx) { (void)ctx; return pvclock_monotonic(); }

/* §3.3 */
uint64_t Z_morganaZ_clock_wall(ctx_t *ctx) { (void)ctx; return pvclock_wall(); }

/* §3.4 */
uint32_t Z_morganaZ_block(ctx_t *ctx, uint64_t deadline) { (void)ctx; return sched_block((int64_t)deadline); }

/* §3.5 */
uint32_t Z_morganaZ_shutdown(ctx_t *ctx, uint32_t reason)
{
    (void)ctx;
    if (reason != SHUTDOWN_poweroff && reason != SHUTDOWN_reboot &&
        reason != SHUTDOWN_crash && reason != SHUTDOWN_watchdog)
        return -EINVAL;
    shim_shutdown(reason);
}

/* §3.6 */
uint32_t Z_morganaZ_boot_info(ctx_t *ctx, uint32_t buf, uint32_t len)
{
    (void)ctx;
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -EFAULT;
    struct {
        uint32_t abi_version, platform, domid, si_flags;
        uint64_t nr_pages, mem_limit, store_mfn;
        uint32_t store_evtchn, console_evtchn;
        uint64_t console_mfn, boot_ns;
    } info = {
        .abi_version = 1,
        .platform = PLATFORM_XEN_PV,
        .domid = 0xffffffff,            /* a PV guest learns it from xenstore later */
        .si_flags = start_info->flags,
        .nr_pages = start_info->nr_pages,
        .mem_limit = mm_free_bytes(),
        .store_mfn = start_info->store_mfn,
        .store_evtchn = start_info->store_evtchn,
        .console_evtchn = start_info->console.domU.evtchn,
        .console_mfn = start_info->console.domU.mfn,
        .boot_ns = boot_ns,
    };
    _Static_assert(sizeof(info) == BOOTINFO_SIZE, "boot_info is 64 bytes (ABI.md §3.6)");
    memcpy(p, &info, len < BOOTINFO_SIZE ? len : BOOTINFO_SIZE);
    return BOOTINFO_SIZE;
}

/* §3.7 */
uint32_t Z_morganaZ_boot_cmdline(ctx_t *ctx, uint32_t buf, uint32_t len)
{
    (void)ctx;
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -EFAULT;
    uint32_t n = 0;                    /* Xen NUL-terminates it within its 1024 bytes */
    while (n < sizeof(start_info->cmd_line) && start_info->cmd_line[n]) n++;
    memcpy(p, start_info->cmd_line, len < n ? len : n);
    return n;
}
