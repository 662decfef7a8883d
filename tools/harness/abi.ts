// The host side of the import ABI (shim/ABI.md) for Node: the imports object a
// unikernel module is instantiated with, implemented against an emulated Domain.
import { Domain, SHUTDOWN } from "./domain.ts";
import { EBUSY, EFAULT, EINVAL, GuestFault, PAGE_SIZE } from "./errno.ts";

export { GuestFault };

export const ABI_MODULE = "morgana";
/** Every import of ABI v1 and its signature (shim/ABI.md §3, §6–9); test/abi/sources.test.ts
 * holds it to ABI.md, assembly/runtime/abi.ts and the shim's definitions. */
export const ABI_IMPORTS: Record<string, string> = {
  console_write: "(i32, i32) -> i32",
  clock_monotonic: "() -> i64",
  clock_wall: "() -> i64",
  block: "(i64) -> i32",
  shutdown: "(i32) -> i32",
  boot_info: "(i32, i32) -> i32",
  boot_cmdline: "(i32, i32) -> i32",
  // §6 shared memory
  mem_barrier: "() -> ()",
  // §7 xenstore ring
  store_ring_map: "(i32) -> i32",
  // §8 event channels
  evtchn_alloc_unbound: "(i32) -> i32",
  evtchn_bind_interdomain: "(i32, i32) -> i32",
  evtchn_notify: "(i32) -> i32",
  evtchn_mask: "(i32) -> i32",
  evtchn_unmask: "(i32) -> i32",
  evtchn_close: "(i32) -> i32",
  evtchn_poll: "(i32, i32) -> i32",
  // §9 grant tables
  gnttab_grant_access: "(i32, i32, i32) -> i32",
  gnttab_end_access: "(i32) -> i32",
  gnttab_map: "(i32, i32, i32, i32) -> i32",
  gnttab_unmap: "(i32) -> i32",
  // §11 entropy
  entropy_fill: "(i32, i32) -> i32",
};

/** The fake machine frame boot_info reports for the xenstore ring (there are no frames here). */
export const HARNESS_STORE_MFN = 0xfeffen;
export const HARNESS_CONSOLE_MFN = 0xfefffn;

const BOOTINFO_SIZE = 64;
const PLATFORM_HARNESS = 2;
const NO_DEADLINE = 0x7fff_ffff_ffff_ffffn;

/** Thrown through the wasm stack by shutdown(): unwinds the guest, carries the reason. */
export class ShutdownSignal {
  constructor(readonly reason: number) {}
}

/** Thrown by block() when nothing could ever wake the domain (ABI.md §3.4). */
export class DeadlockSignal {
  readonly message = "block() with no deadline and no event source: the domain would sleep forever";
}

// A synchronous sleep: the guest's call into block() must not return early.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Builds the `morgana` import object. `memory` is read lazily: the module defines
 * its memory, so it exists only after instantiation.
 */
export function abiImports(dom: Domain, memory: () => WebAssembly.Memory): Record<string, Function> {
  // Returns a view of [ptr, ptr+len) or null when it is not entirely inside memory.
  const range = (ptr: number, len: number): Uint8Array | null => {
    const p = ptr >>> 0;
    const n = len >>> 0;
    const buf = memory().buffer;
    if (p + n > buf.byteLength) return null;
    return new Uint8Array(buf, p, n);
  };

  return {
    console_write(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return -EFAULT;
      dom.console.write(bytes);
      return len >>> 0;
    },

    clock_monotonic(): bigint {
      return dom.monotonicNs();
    },

    clock_wall(): bigint {
      return dom.wallNs();
    },

    block(deadline: bigint): number {
      // Backends run here too: xenstored answers, timed events fire (ABI.md §8: a pending port wins).
      for (;;) {
        const wake = dom.wake;
        const seen = wake ? Atomics.load(wake, 0) : 0; // read before service(): later work ends the wait below
        dom.service();
        if (dom.evtchn.anyPending()) return 1;
        const now = dom.monotonicNs();
        if (deadline <= now) return 0;
        const next = dom.nextTimed();
        const until = next !== undefined && next < deadline ? next : deadline;
        if (wake) {
          // Another thread can wake us: sleep until then or `until` (sub-ms timeouts are kept).
          Atomics.wait(wake, 0, seen, Math.min(Number(until - now) / 1e6, 60_000));
          continue;
        }
        if (until >= NO_DEADLINE) throw new DeadlockSignal();
        const ms = Number((until - now) / 1_000_000n);
        if (ms > 0) sleepMs(Math.min(ms, 60_000));
        else while (dom.monotonicNs() < until) sleepMs(1); // finish the sub-ms remainder
      }
    },

    shutdown(reason: number): number {
      const known: number[] = [SHUTDOWN.poweroff, SHUTDOWN.reboot, SHUTDOWN.crash, SHUTDOWN.watchdog];
      if (!known.includes(reason)) return -EINVAL;
      throw new ShutdownSignal(reason);
    },

    boot_info(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return -EFAULT;
      const info = new DataView(new ArrayBuffer(BOOTINFO_SIZE));
      info.setUint32(0, 1, true); // abi_version
      info.setUint32(4, PLATFORM_HARNESS, true);
      info.setUint32(8, dom.domid, true);
      info.setUint32(12, 0, true); // si_flags: no start_info here
      info.setBigUint64(16, BigInt(dom.nrPages), true);
      info.setBigUint64(24, BigInt(dom.memLimitBytes(memory().buffer.byteLength)), true);
      info.setBigUint64(32, HARNESS_STORE_MFN, true);
      info.setUint32(40, dom.storePort.guestPort, true);
      info.setUint32(44, dom.consolePort.guestPort, true);
      info.setBigUint64(48, HARNESS_CONSOLE_MFN, true);
      info.setBigInt64(56, 0n, true); // boot_ns: the domain's clock starts at its entry
      bytes.set(new Uint8Array(info.buffer, 0, bytes.length));
      return BOOTINFO_SIZE;
    },

    boot_cmdline(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return -EFAULT;
      bytes.set(dom.cmdline.subarray(0, bytes.length));
      return dom.cmdline.length;
    },

    mem_barrier(): void {
      // The harness's backends run inside import calls: program order is already the order they see.
    },

    store_ring_map(addr: number): number {
      const a = addr >>> 0;
      if (a % PAGE_SIZE !== 0) return -EINVAL;
      if (a + PAGE_SIZE > memory().buffer.byteLength) return -EFAULT;
      if (dom.xenstored.attached) return -EBUSY;
      dom.xenstored.attach(a);
      return 0;
    },

    evtchn_alloc_unbound: (remote: number) => dom.evtchn.allocUnbound(remote),
    evtchn_bind_interdomain: (remote: number, port: number) => dom.evtchn.bindInterdomain(remote, port),
    evtchn_notify(port: number): number {
      const rc = dom.evtchn.notify(port);
      dom.gnttab.checkReadOnly();
      return rc;
    },
    evtchn_mask: (port: number) => dom.evtchn.mask(port),
    evtchn_unmask: (port: number) => dom.evtchn.unmask(port),
    evtchn_close: (port: number) => dom.evtchn.close(port),
    evtchn_poll(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return -EFAULT;
      const ports = dom.evtchn.poll(Math.floor((len >>> 0) / 4));
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      ports.forEach((p, i) => dv.setUint32(i * 4, p, true));
      return ports.length;
    },

    gnttab_grant_access: (domid: number, addr: number, ro: number) => dom.gnttab.grantAccess(domid, addr, ro),
    gnttab_end_access: (ref: number) => dom.gnttab.endAccess(ref),
    gnttab_map: (domid: number, ref: number, addr: number, ro: number) => dom.gnttab.map(domid, ref, addr, ro),
    gnttab_unmap: (handle: number) => dom.gnttab.unmap(handle),

    entropy_fill(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return -EFAULT;
      // getRandomValues fills at most 65536 bytes per call.
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(i + 65536, bytes.length)));
      return len >>> 0;
    },
  };
}
