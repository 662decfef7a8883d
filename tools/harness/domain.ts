// The emulated Xen domain the harness runs a unikernel in: what the shim gets
// from start_info and the hypervisor, reduced to what the ABI exposes: clocks,
// the console, a grant table, event channels and xenstored (ABI.md §6–10).
// Each part is as strict as the real one, so bugs show up in tests, not on Xen.
import { EventChannels, BackendEnd } from "./event-channels.ts";
import { GrantTable } from "./grant-table.ts";
import { Xenstored } from "./xenstored.ts";
import type { VbdBackend } from "./blkback.ts";
import type { VifBackend } from "./netback.ts";
import { DEFAULT_MEMORY_MIB, estimateImageBytes, linearFrames, memoryPlan } from "./memory.ts";

/** Xen's SHUTDOWN_* reasons (xen/include/public/sched.h). */
export const SHUTDOWN = { poweroff: 0, reboot: 1, suspend: 2, crash: 3, watchdog: 4 } as const;

export interface DomainConfig {
  /** Domain name, as in the xl config. */
  name: string;
  /** Domain id; the harness knows it, unlike a PV guest at boot. */
  domid?: number;
  /** Memory of the domain in MiB (xl `memory =`; default 32, the images' default). */
  memoryMiB?: number;
  /** The shim's free frame pool after boot (memory.ts memoryPlan); default: that of a small image. */
  poolFrames?: number;
  /** The command line (xl `extra =`). */
  cmdline?: string;
  /** Where console bytes go as they are written (default: nowhere; they are always captured). */
  onConsole?: (bytes: Uint8Array) => void;
  /** The VM's UUID (xenstore /vm/<uuid>). */
  uuid?: string;
}

/** A timed event a backend or test scheduled: it can wake a blocked domain. */
interface Timed {
  at: bigint;
  fn: () => void;
}

/** The console backend: an ordered byte log, like xenconsoled's guest log. */
export class ConsoleBackend {
  private chunks: Uint8Array[] = [];
  constructor(private readonly sink?: (bytes: Uint8Array) => void) {}

  write(bytes: Uint8Array): void {
    const copy = bytes.slice(); // the guest may reuse its buffer at once
    this.chunks.push(copy);
    this.sink?.(copy);
  }

  /** Everything written so far, decoded as UTF-8 (invalid bytes become U+FFFD). */
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

export class Domain {
  readonly name: string;
  readonly domid: number;
  readonly nrPages: number;
  /** Frames memory.grow and the shim's page tables share (shim/mm.c's pool after mm_init). */
  readonly poolFrames: number;
  readonly cmdline: Uint8Array;
  readonly console: ConsoleBackend;
  readonly uuid: string;
  /** Monotonic origin: clock_monotonic() counts from here (the "PV entry point"). */
  private readonly t0 = process.hrtime.bigint();
  readonly evtchn: EventChannels;
  readonly gnttab: GrantTable;
  readonly xenstored: Xenstored;
  readonly storePort: BackendEnd;
  readonly consolePort: BackendEnd;
  /** Virtual block devices (blkback.ts), in device order. */
  readonly vbds: VbdBackend[] = [];
  /** Virtual network interfaces (netback.ts), in device order. */
  readonly vifs: VifBackend[] = [];
  /** Backends serviced when the guest blocks (xenstored first). */
  readonly services: (() => void)[] = [];
  private timed: Timed[] = [];
  /** Set once instantiated: the guest's linear memory. */
  memory: () => ArrayBuffer = () => new ArrayBuffer(0);
  /**
   * Work from another thread (tap.ts's TAP wire): word 0 is bumped and Atomics.notify'd when
   * there is some. block() sleeps on it instead of its own cell, and may then wait with no deadline.
   */
  wake?: Int32Array;

  constructor(cfg: DomainConfig) {
    this.name = cfg.name;
    this.domid = cfg.domid ?? 1;
    const plan = memoryPlan(cfg.memoryMiB ?? DEFAULT_MEMORY_MIB, estimateImageBytes(0));
    this.nrPages = plan.nrPages;
    this.poolFrames = cfg.poolFrames ?? plan.poolFrames;
    this.cmdline = new TextEncoder().encode(cfg.cmdline ?? "");
    if (this.cmdline.length > 1023)
      throw new Error(`command line is ${this.cmdline.length} bytes: Xen's start_info holds at most 1023 (MAX_GUEST_CMDLINE)`);
    this.console = new ConsoleBackend(cfg.onConsole);
    this.uuid = cfg.uuid ?? "6d6f7267-616e-4100-8000-000000000001";
    const mem = () => this.memory();
    this.evtchn = new EventChannels(this.domid);
    this.gnttab = new GrantTable(this.domid, mem);
    // The domain builder binds the xenstore and console channels before the guest runs.
    this.storePort = this.evtchn.bootPort(() => this.xenstored.pump());
    this.consolePort = this.evtchn.bootPort(() => {});
    this.xenstored = new Xenstored(this.domid, this.name, this.uuid, mem, {
      store: this.storePort.guestPort,
      console: this.consolePort.guestPort,
    });
    this.xenstored.port = this.storePort;
    this.services.push(() => this.xenstored.pump());
  }

  /** Runs fn at monotonic time `at` (ns), when the guest blocks past it. Counts as an event source. */
  schedule(atNs: bigint, fn: () => void): void {
    this.timed.push({ at: atNs, fn });
    this.timed.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** The earliest scheduled event's time, or undefined. */
  nextTimed(): bigint | undefined {
    return this.timed[0]?.at;
  }

  /** Runs the timed events that are due and services every backend once. */
  service(): void {
    const now = this.monotonicNs();
    while (this.timed.length && this.timed[0].at <= now) this.timed.shift()!.fn();
    for (const s of this.services) s();
    this.gnttab.checkReadOnly();
  }

  /** Nanoseconds since the domain started. */
  monotonicNs(): bigint {
    return process.hrtime.bigint() - this.t0;
  }

  /** Nanoseconds since the Unix epoch. */
  wallNs(): bigint {
    // Date.now() has ms resolution; add the sub-ms part of the monotonic clock.
    const ms = BigInt(Date.now());
    return ms * 1_000_000n + (this.monotonicNs() % 1_000_000n);
  }

  /**
   * boot_info.mem_limit: the free frames x 4096, as the shim reports them (mm_free_bytes):
   * the pool less the frames the linear memory holds (its pages and their page tables).
   */
  memLimitBytes(linearBytes: number): number {
    return Math.max(0, this.poolFrames - linearFrames(Math.ceil(linearBytes / 65536))) * 4096;
  }

  /**
   * Whether anything could ever wake a blocked domain. Every backend here runs
   * inside the guest's own import calls, so once the guest blocks only a pending
   * port or a scheduled event (a test's dom0 write firing a watch, a timed
   * backend reply) can wake it; without one, block(no deadline) is a deadlock.
   */
  hasEventSources(): boolean {
    return this.evtchn.anyPending() || this.timed.length > 0;
  }
}
