// errno values the harness returns (negated) through the ABI: Xen's
// xen/include/public/errno.h numbering, which is Linux's (shim/ABI.md §2, §6).
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EIO = 5;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EROFS = 30;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const EISCONN = 106;

/** Xen's DOMID_SELF (xen/include/public/xen.h): "the calling domain". */
export const DOMID_SELF = 0x7ff0;
/** The emulated control domain: home of xenstored and every backend. */
export const DOM0 = 0;
export const PAGE_SIZE = 4096;

/** A guest error the real hypervisor would turn into a fault: ends the run as a crash. */
export class GuestFault {
  constructor(readonly message: string) {}
}
