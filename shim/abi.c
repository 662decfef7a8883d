/* The import ABI v1 (shim/ABI.md §3), as wasm2c 1.0.32 names the imports of module
 * "morgana": Z_morganaZ_<name>, with the importing instance's context pointer first. */
#include <string.h>
#include "shim.h"

#define BOOTINFO_SIZE   64
#define PLATFORM_XEN_PV 1

/* The context goes unused: there is one instance (-Wall does not warn about unused parameters). */
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
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -XEN_EFAULT;
    console_ring_write((const char *)p, len);
    return len;
}

/* §3.2 */
uint64_t Z_morganaZ_clock_monotonic(ctx_t *ctx) { return pvclock_monotonic(); }

/* §3.3 */
uint64_t Z_morganaZ_clock_wall(ctx_t *ctx) { return pvclock_wall(); }

/* §3.4 */
uint32_t Z_morganaZ_block(ctx_t *ctx, uint64_t deadline) { return sched_block((int64_t)deadline); }

/* §3.5 */
uint32_t Z_morganaZ_shutdown(ctx_t *ctx, uint32_t reason)
{
    if (reason != SHUTDOWN_poweroff && reason != SHUTDOWN_reboot && reason != SHUTDOWN_crash &&
        reason != SHUTDOWN_watchdog)
        return -XEN_EINVAL;
    shim_shutdown(reason);
}

/* §3.6 */
uint32_t Z_morganaZ_boot_info(ctx_t *ctx, uint32_t buf, uint32_t len)
{
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -XEN_EFAULT;
    struct {
        uint32_t abi_version, platform, domid, si_flags;
        uint64_t nr_pages, mem_limit, store_mfn;
        uint32_t store_evtchn, console_evtchn;
        uint64_t console_mfn, boot_ns;
    } info = {
        .abi_version = 1,
        .platform = PLATFORM_XEN_PV,
        .domid = evtchn_self_domid, /* learnt from Xen at boot (evtchn.c) */
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
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -XEN_EFAULT;
    uint32_t n = 0; /* Xen NUL-terminates it within its 1024 bytes */
    while (n < sizeof(start_info->cmd_line) && start_info->cmd_line[n]) n++;
    memcpy(p, start_info->cmd_line, len < n ? len : n);
    return n;
}

/* ABI v1 extensions (§6-9). Addresses are linear-memory offsets; the subsystems
 * (evtchn.c, gnttab.c) validate ports, refs and handles. */

/* §6.2: wasm2c calls this as a function, so the compiler cannot move the AOT code's
 * memory accesses across it either. */
void Z_morganaZ_mem_barrier(ctx_t *ctx) { mfence(); }

/* §7.1: the ring's frame replaces the page's; the page's own frame stays allocated
 * to it (no unmap in v1), so linear page k stays pfn first + k (mm.c). */
int64_t abi_store_ring_offset = -1;
uint32_t Z_morganaZ_store_ring_map(ctx_t *ctx, uint32_t addr)
{
    if (addr & (PAGE_SIZE - 1)) return -XEN_EINVAL;
    if (!wasm_range(addr, PAGE_SIZE)) return -XEN_EFAULT;
    if (abi_store_ring_offset >= 0 || gnttab_page_mapped(addr)) return -XEN_EBUSY;
    long rc = mm_linear_remap(addr, start_info->store_mfn);
    if (rc) return rc;
    abi_store_ring_offset = addr;
    return 0;
}

/* §8 */
uint32_t Z_morganaZ_evtchn_alloc_unbound(ctx_t *ctx, uint32_t domid) { return evtchn_alloc_unbound(domid); }
uint32_t Z_morganaZ_evtchn_bind_interdomain(ctx_t *ctx, uint32_t domid, uint32_t port)
{
    return evtchn_bind_interdomain(domid, port);
}
uint32_t Z_morganaZ_evtchn_notify(ctx_t *ctx, uint32_t port) { return evtchn_notify(port); }
uint32_t Z_morganaZ_evtchn_mask(ctx_t *ctx, uint32_t port) { return evtchn_mask(port); }
uint32_t Z_morganaZ_evtchn_unmask(ctx_t *ctx, uint32_t port) { return evtchn_unmask(port); }
uint32_t Z_morganaZ_evtchn_close(ctx_t *ctx, uint32_t port) { return evtchn_close(port); }

/* §8.6: ports go out as little-endian u32s, at most len / 4 of them. */
uint32_t Z_morganaZ_evtchn_poll(ctx_t *ctx, uint32_t buf, uint32_t len)
{
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -XEN_EFAULT;
    uint32_t ports[64], n = 0, max = len / 4;
    while (n < max) { /* in chunks: the buffer may be unaligned */
        uint32_t want = max - n < 64 ? max - n : 64;
        uint32_t got = evtchn_poll(ports, want);
        memcpy(p + n * 4, ports, got * 4);
        n += got;
        if (got < want) break;
    }
    return n;
}

/* §9 */
uint32_t Z_morganaZ_gnttab_grant_access(ctx_t *ctx, uint32_t domid, uint32_t addr, uint32_t readonly)
{
    return gnttab_grant_access(domid, addr, readonly != 0);
}
uint32_t Z_morganaZ_gnttab_end_access(ctx_t *ctx, uint32_t ref) { return gnttab_end_access(ref); }
uint32_t Z_morganaZ_gnttab_map(ctx_t *ctx, uint32_t domid, uint32_t ref, uint32_t addr, uint32_t readonly)
{
    return gnttab_map(domid, ref, addr, readonly != 0);
}
uint32_t Z_morganaZ_gnttab_unmap(ctx_t *ctx, uint32_t handle) { return gnttab_unmap(handle); }

/* §11 entropy: RDRAND, when CPUID.1:ECX[30] says the CPU has it. Intel's DRNG guide:
 * retry up to 10 times per word (CF=0 means no value was ready); a CPU that keeps failing
 * is broken, and the call fails rather than return predictable bytes. */
#define RDRAND_RETRIES 10

static int rdrand_state; /* 0: not probed, 1: present, -1: absent */

static int rdrand_present(void)
{
    if (rdrand_state == 0) {
        uint32_t a = 1, b, c = 0, d;
        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
        rdrand_state = (c >> 30) & 1 ? 1 : -1;
    }
    return rdrand_state > 0;
}

static int rdrand64(uint64_t *out)
{
    for (int i = 0; i < RDRAND_RETRIES; i++) {
        uint8_t ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(*out), "=qm"(ok) : : "cc");
        if (ok) return 1;
    }
    return 0;
}

uint32_t Z_morganaZ_entropy_fill(ctx_t *ctx, uint32_t buf, uint32_t len)
{
    uint8_t *p = wasm_range(buf, len);
    if (!p) return -XEN_EFAULT;
    if (!rdrand_present()) return -XEN_ENOSYS;
    for (uint32_t i = 0; i < len; i += 8) {
        uint64_t v;
        if (!rdrand64(&v)) return -XEN_EIO;
        uint32_t n = len - i < 8 ? len - i : 8;
        memcpy(p + i, &v, n);
    }
    return len;
}
