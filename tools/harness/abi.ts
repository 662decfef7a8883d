// The host side of the import ABI (shim/ABI.md) for Node: the imports object a
// unikernel module is instantiated with, implemented against an emulated Domain.
import { Domain, SHUTDOWN } from "./domain.ts";

export const ABI_MODULE = "morgana";
/** Every import of ABI v1 and its signature (shim/ABI.md §3). */
export const ABI_IMPORTS: Record<string, string> = {
  console_write: "(i32, i32) -> i32",
  clock_monotonic: "() -> i64",
  clock_wall: "() -> i64",
  block: "(i64) -> i32",
  shutdown: "(i32) -> i32",
  boot_info: "(i32, i32) -> i32",
  boot_cmdline: "(i32, i32) -> i32",
};

const EFAULT = -14;
const EINVAL = -22;
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
      if (!bytes) return EFAULT;
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
      const now = dom.monotonicNs();
      if (deadline <= now) return 0;
      if (deadline >= NO_DEADLINE && !dom.hasEventSources()) throw new DeadlockSignal();
      // No event sources in v1: sleep to the deadline (in slices, so a huge one stays bounded per call).
      const ms = Number((deadline - now) / 1_000_000n);
      sleepMs(Math.min(ms, 60_000));
      while (dom.monotonicNs() < deadline) sleepMs(1); // finish the sub-ms remainder
      return 0;
    },

    shutdown(reason: number): number {
      const known: number[] = [SHUTDOWN.poweroff, SHUTDOWN.reboot, SHUTDOWN.crash, SHUTDOWN.watchdog];
      if (!known.includes(reason)) return EINVAL;
      throw new ShutdownSignal(reason);
    },

    boot_info(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return EFAULT;
      const info = new DataView(new ArrayBuffer(BOOTINFO_SIZE));
      info.setUint32(0, 1, true); // abi_version
      info.setUint32(4, PLATFORM_HARNESS, true);
      info.setUint32(8, dom.domid, true);
      info.setUint32(12, 0, true); // si_flags: no start_info here
      info.setBigUint64(16, BigInt(dom.nrPages), true);
      info.setBigUint64(24, BigInt(dom.memLimitBytes(memory().buffer.byteLength)), true);
      // store/console mfn and evtchn stay 0 until the harness emulates those rings.
      info.setBigInt64(56, 0n, true); // boot_ns: the domain's clock starts at its entry
      bytes.set(new Uint8Array(info.buffer, 0, bytes.length));
      return BOOTINFO_SIZE;
    },

    boot_cmdline(buf: number, len: number): number {
      const bytes = range(buf, len);
      if (!bytes) return EFAULT;
      bytes.set(dom.cmdline.subarray(0, bytes.length));
      return dom.cmdline.length;
    },
  };
}
