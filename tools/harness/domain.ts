// The emulated Xen domain the harness runs a unikernel in: what the shim gets
// from start_info and the hypervisor, reduced to what ABI v1 exposes.
//
// Later issues add the grant table, event channels, xenstored and backends here;
// each is as strict as the real one, so bugs show up in tests, not on Xen.

/** Xen's SHUTDOWN_* reasons (xen/include/public/sched.h). */
export const SHUTDOWN = { poweroff: 0, reboot: 1, suspend: 2, crash: 3, watchdog: 4 } as const;

export interface DomainConfig {
  /** Domain name, as in the xl config. */
  name: string;
  /** Domain id; the harness knows it, unlike a PV guest at boot. */
  domid?: number;
  /** Memory of the domain in MiB (xl `memory =`). */
  memoryMiB?: number;
  /** The command line (xl `extra =`). */
  cmdline?: string;
  /** Where console bytes go as they are written (default: nowhere; they are always captured). */
  onConsole?: (bytes: Uint8Array) => void;
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
  readonly cmdline: Uint8Array;
  readonly console: ConsoleBackend;
  /** Monotonic origin: clock_monotonic() counts from here (the "PV entry point"). */
  private readonly t0 = process.hrtime.bigint();

  constructor(cfg: DomainConfig) {
    this.name = cfg.name;
    this.domid = cfg.domid ?? 1;
    this.nrPages = Math.floor((cfg.memoryMiB ?? 32) * 256);
    this.cmdline = new TextEncoder().encode(cfg.cmdline ?? "");
    if (this.cmdline.length > 1023)
      throw new Error(`command line is ${this.cmdline.length} bytes: Xen's start_info holds at most 1023 (MAX_GUEST_CMDLINE)`);
    this.console = new ConsoleBackend(cfg.onConsole);
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
   * Bytes memory.grow can still obtain: the domain's memory less what the
   * linear memory already holds (the shim reports its free frames likewise).
   */
  memLimitBytes(linearBytes: number): number {
    return Math.max(0, this.nrPages * 4096 - linearBytes);
  }

  /**
   * Whether anything could ever wake a blocked domain. ABI v1 has no event
   * sources; the event-channel issue adds them.
   */
  hasEventSources(): boolean {
    return false;
  }
}
