// The Morgana import ABI, version 1: declarations only.
// The specification is shim/ABI.md; keep the two in step.
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
export const EIO: i32 = 5;
export const ENOMEM: i32 = 12;
export const EFAULT: i32 = 14;
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
