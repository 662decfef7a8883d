// The PV console byte rings of xen/include/public/io/console.h:
//
//   struct xencons_interface {
//     char in[1024];     input: backend → guest
//     char out[2048];    output: guest → backend
//     uint32_t in_cons, in_prod, out_cons, out_prod;   (XENCONS_RING_IDX)
//   };
//
// The shim keeps the boot console for console_write (so a trap can always be
// printed, ABI.md §10); this writer drives any other console ring, e.g. a
// second PV console connected through xenbus. Output is ordered and
// flow-controlled: when the ring is full the writer queues and waits for the
// backend's event. Nothing waits without bound (shim/ABI.md §10): the queue
// holds at most maxBacklog bytes, beyond which output is dropped, counted, and
// reported by a marker line once there is room; drain() fails when the backend
// consumes nothing for its stall time.
import { Future, Sleep, State, sleep } from "../sched";
import { ByteQueue, ByteRing } from "./byte-ring";
import { Channel, EventHandler } from "./evtchn";

export const IN: usize = 0;
export const IN_SIZE: u32 = 1024;
export const OUT: usize = 1024;
export const OUT_SIZE: u32 = 2048;
export const IN_CONS: usize = 3072;
export const IN_PROD: usize = 3076;
export const OUT_CONS: usize = 3080;
export const OUT_PROD: usize = 3084;

/** How long drain() waits while the backend consumes nothing before it fails. */
export const DRAIN_STALL_NS: i64 = 5_000_000_000;
/** Bytes queued beyond the ring before write() drops output (ConsoleRing.maxBacklog). */
export const MAX_BACKLOG: u64 = 65536;

/** Resolves once the backend has consumed every byte written before it was asked for. */
class Drained extends Future {
  timer: Sleep | null = null;
  constructor(
    public ring: ConsoleRing,
    public upTo: u64,
    public stallNs: i64,
    /** What the backend had consumed when the timer was last set. */
    public seen: u64,
  ) {
    super();
  }
  arm(): void {
    const t = sleep(this.stallNs);
    t.addWaiter(this);
    this.timer = t;
  }
  wake(from: Future): void {
    if (from === this.timer && from.ok) this.ring.stalled(this);
  }
  protected settle(state: State, error: string): void {
    const t = this.timer;
    this.timer = null;
    if (t) t.cancel();
    super.settle(state, error);
  }
}

export class ConsoleRing extends EventHandler {
  readonly out: ByteRing;
  readonly input: ByteRing;
  /** Output waiting for room in the ring. */
  private queue: ByteQueue;
  /** Bytes accepted by write() since the start. */
  written: u64 = 0;
  private drains: Array<Drained> = new Array<Drained>();
  error: string = "";
  /** Most bytes queued beyond the ring; more are dropped (and counted) until there is room. */
  maxBacklog: u64 = MAX_BACKLOG;
  /** Bytes dropped since the last marker, and in all. */
  dropped: u64 = 0;
  droppedTotal: u64 = 0;

  constructor(
    public page: usize,
    public ch: Channel,
  ) {
    super();
    const out = new ByteRing(page + OUT, OUT_SIZE, page + OUT_CONS, page + OUT_PROD);
    this.out = out;
    this.input = new ByteRing(page + IN, IN_SIZE, page + IN_CONS, page + IN_PROD);
    this.queue = new ByteQueue(out);
    ch.handler = this;
  }

  /** Bytes placed in the ring since the start. */
  get placed(): u64 {
    return this.queue.placed;
  }

  /** Queues the string's UTF-8 bytes, after everything written before, and starts sending; drops them when the queue is full. */
  write(s: string): void {
    const b = Uint8Array.wrap(String.UTF8.encode(s));
    if (b.length == 0) return;
    if (this.dropped > 0) this.resume();
    if (this.dropped > 0 || this.written - this.placed + <u64>b.length > this.maxBacklog) {
      this.dropped += <u64>b.length;
      this.droppedTotal += <u64>b.length;
      return;
    }
    this.enqueue(b);
  }

  /**
   * Resolves when the backend has read everything written so far (flush at shutdown);
   * rejects when it consumes nothing for stallNs, or corrupts the ring.
   */
  drain(stallNs: i64 = DRAIN_STALL_NS): Future {
    const d = new Drained(this, this.written, stallNs, this.consumed());
    this.drains.push(d);
    this.check();
    if (d.pending) d.arm();
    return d;
  }

  /** A drain's timer fired: fails it if the backend consumed nothing meanwhile, else waits again. */
  stalled(d: Drained): void {
    const now = this.consumed();
    if (now > d.seen) {
      d.seen = now;
      d.arm();
      return;
    }
    const i = this.drains.indexOf(d);
    if (i >= 0) this.drains.splice(i, 1);
    const left = this.written - now;
    d.reject("console: the backend consumed nothing for " + (d.stallNs / 1_000_000).toString() + " ms (" + left.toString() + " bytes not sent)");
  }

  private enqueue(b: Uint8Array): void {
    this.queue.push(b);
    this.written += <u64>b.length;
    this.pump();
  }

  // Queues the dropped-output marker once it fits, and takes output again.
  private resume(): void {
    const m = Uint8Array.wrap(String.UTF8.encode("[console: " + this.dropped.toString() + " bytes dropped: the console backend stopped reading]\n"));
    if (this.written - this.placed + <u64>m.length > this.maxBacklog) return;
    this.dropped = 0;
    this.enqueue(m);
  }

  // Bytes the backend has consumed since the start (placed less what is still in the ring).
  private consumed(): u64 {
    const inRing = this.out.used();
    return inRing < 0 ? 0 : this.placed - <u64>inRing;
  }

  /** Bytes the backend has not consumed yet (queued here or still in the ring). */
  backlog(): u64 {
    const inRing = this.out.used();
    return this.written - this.placed + <u64>(inRing < 0 ? 0 : inRing);
  }

  /** Takes the input the backend sent, as text ("" when none). */
  read(): string {
    const buf = new Uint8Array(IN_SIZE);
    const n = this.input.read(buf.dataStart, buf.length);
    if (n > 0) this.ch.notify(); // room again in the input ring
    return n > 0 ? String.UTF8.decodeUnsafe(buf.dataStart, n) : "";
  }

  onEvent(ch: Channel): void {
    this.pump(); // the backend consumed some output: there may be room
    if (this.dropped > 0) this.resume();
    this.check();
  }

  // Copies queued output into the ring; what does not fit waits for the backend's event.
  private pump(): void {
    const before = this.queue.placed;
    if (!this.queue.flush()) {
      this.error = "the console backend corrupted the ring indices";
      return;
    }
    if (this.queue.placed != before) this.ch.notify();
  }

  private check(): void {
    const inRing = this.out.used();
    if (inRing < 0) {
      const ds = this.drains;
      this.drains = new Array<Drained>();
      for (let i = 0; i < ds.length; i++) ds[i].reject("console: the backend corrupted the ring indices");
      return;
    }
    const consumed = this.placed - <u64>inRing;
    let keep = new Array<Drained>();
    for (let i = 0; i < this.drains.length; i++) {
      const d = this.drains[i];
      if (consumed >= d.upTo) d.resolve();
      else keep.push(d);
    }
    this.drains = keep;
  }
}
