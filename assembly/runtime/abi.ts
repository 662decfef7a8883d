// The Morgana import ABI, version 1: declarations only.
// The specification is shim/ABI.md: test/abi/sources.test.ts checks that the imports and
// errno values here, in ABI.md, in the harness and in the shim agree (ABI.md §5 has the
// checklist for adding an import).
// Applications use the runtime API (./index.ts), never these imports directly.

// §3.1 Write len bytes at buf to the console; returns len or -errno.
@external("morgana", "console_write")
export declare function console_write(buf: usize, len: i32): i32;

// §3.2 Monotonic nanoseconds since an arbitrary origin fixed at boot.
@external("morgana", "clock_monotonic")
export declare function clock_monotonic(): i64;

// §3.3 Nanoseconds since the Unix epoch.
@external("morgana", "clock_wall")
export declare function clock_wall(): i64;

// §3.4 Block until an event (returns 1) or the deadline (returns 0).
@external("morgana", "block")
export declare function block(deadline: i64): i32;

// §3.5 Shut down with a SHUTDOWN_* reason; returns -EINVAL only for a bad reason.
@external("morgana", "shutdown")
export declare function shutdown(reason: i32): i32;

// §3.6 Fill buf with the boot_info structure; returns its full size or -errno.
@external("morgana", "boot_info")
export declare function boot_info(buf: usize, len: i32): i32;

// §3.7 Copy the command line into buf; returns its full length or -errno.
@external("morgana", "boot_cmdline")
export declare function boot_cmdline(buf: usize, len: i32): i32;

// §6 A full memory barrier (the shim: a compiler and CPU fence; the harness: nothing).
@external("morgana", "mem_barrier")
export declare function mem_barrier(): void;

// §7 Show the xenstore ring in the 4 KiB page at addr; 0 or -errno.
@external("morgana", "store_ring_map")
export declare function store_ring_map(addr: usize): i32;

// §8 Event channels: ports ≥ 1 or -errno.
@external("morgana", "evtchn_alloc_unbound")
export declare function evtchn_alloc_unbound(remote_domid: i32): i32;
@external("morgana", "evtchn_bind_interdomain")
export declare function evtchn_bind_interdomain(remote_domid: i32, remote_port: i32): i32;
@external("morgana", "evtchn_notify")
export declare function evtchn_notify(port: i32): i32;
@external("morgana", "evtchn_mask")
export declare function evtchn_mask(port: i32): i32;
@external("morgana", "evtchn_unmask")
export declare function evtchn_unmask(port: i32): i32;
@external("morgana", "evtchn_close")
export declare function evtchn_close(port: i32): i32;
// Takes the pending unmasked ports into buf (u32 each); returns how many.
@external("morgana", "evtchn_poll")
export declare function evtchn_poll(buf: usize, len: i32): i32;

// §9 Grant tables (v1).
@external("morgana", "gnttab_grant_access")
export declare function gnttab_grant_access(domid: i32, addr: usize, readonly: i32): i32;
@external("morgana", "gnttab_end_access")
export declare function gnttab_end_access(ref: i32): i32;
@external("morgana", "gnttab_map")
export declare function gnttab_map(domid: i32, ref: i32, addr: usize, readonly: i32): i32;
@external("morgana", "gnttab_unmap")
export declare function gnttab_unmap(handle: i32): i32;

// §11 entropy: fills len bytes from a hardware/hypervisor source and returns len, or -ENOSYS.
@external("morgana", "entropy_fill")
export declare function entropy_fill(buf: usize, len: i32): i32;

/** block() deadline meaning "no deadline" (§3.4). */
export const NO_DEADLINE: i64 = 0x7fff_ffff_ffff_ffff;
/** Xen's DOMID_SELF (xen/include/public/xen.h). */
export const DOMID_SELF: i32 = 0x7ff0;

/** ABI version this runtime is written against (boot_info.abi_version). */
export const ABI_VERSION: u32 = 1;

/** Xen's SHUTDOWN_* reasons (xen/include/public/sched.h). */
export const SHUTDOWN_POWEROFF: i32 = 0;
export const SHUTDOWN_REBOOT: i32 = 1;
export const SHUTDOWN_CRASH: i32 = 3;
export const SHUTDOWN_WATCHDOG: i32 = 4;

/** errno values (xen/include/public/errno.h). */
export const EPERM: i32 = 1;
export const ENOENT: i32 = 2;
export const ESRCH: i32 = 3;
export const EIO: i32 = 5;
export const E2BIG: i32 = 7;
export const EAGAIN: i32 = 11;
export const ENOMEM: i32 = 12;
export const EACCES: i32 = 13;
export const EFAULT: i32 = 14;
export const EBUSY: i32 = 16;
export const EEXIST: i32 = 17;
export const EINVAL: i32 = 22;
export const ENOSPC: i32 = 28;
export const ENOSYS: i32 = 38;

/** boot_info layout (ABI.md §3.6). */
export const BOOTINFO_SIZE: i32 = 64;
export const BI_ABI_VERSION: usize = 0;
export const BI_PLATFORM: usize = 4;
export const BI_DOMID: usize = 8;
export const BI_SI_FLAGS: usize = 12;
export const BI_NR_PAGES: usize = 16;
export const BI_MEM_LIMIT: usize = 24;
export const BI_STORE_MFN: usize = 32;
export const BI_STORE_EVTCHN: usize = 40;
export const BI_CONSOLE_EVTCHN: usize = 44;
export const BI_CONSOLE_MFN: usize = 48;
export const BI_BOOT_NS: usize = 56;
