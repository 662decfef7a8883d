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
// flow-controlled: when the ring is full the writer waits for the backend's
// event, and it never drops a byte.
import { Future } from "../sched";
import { ByteRing } from "./byte-ring";
import { Channel, EventHandler } from "./evtchn";

export const IN: usize = 0;
export const IN_SIZE: u32 = 1024;
export const OUT: usize = 1024;
export const OUT_SIZE: u32 = 2048;
export const IN_CONS: usize = 3072;
export const IN_PROD: usize = 3076;
export const OUT_CONS: usize = 3080;
export const OUT_PROD: usize = 3084;

/** Resolves once the backend has consumed every byte written before it was asked for. */
class Drained extends Future {
  constructor(public upTo: u64) {
    super();
  }
}

export class ConsoleRing extends EventHandler {
  readonly out: ByteRing;
  readonly input: ByteRing;
  private queue: Array<Uint8Array> = new Array<Uint8Array>();
  private off: i32 = 0;
  /** Bytes accepted by write() and bytes placed in the ring, since the start. */
  written: u64 = 0;
  placed: u64 = 0;
  private drains: Array<Drained> = new Array<Drained>();
  error: string = "";

  constructor(
    public page: usize,
    public ch: Channel,
  ) {
    super();
    this.out = new ByteRing(page + OUT, OUT_SIZE, page + OUT_CONS, page + OUT_PROD);
    this.input = new ByteRing(page + IN, IN_SIZE, page + IN_CONS, page + IN_PROD);
    ch.handler = this;
  }

  /** Queues the string's UTF-8 bytes, after everything written before, and starts sending. */
  write(s: string): void {
    const b = Uint8Array.wrap(String.UTF8.encode(s));
    if (b.length == 0) return;
    this.queue.push(b);
    this.written += <u64>b.length;
    this.pump();
  }

  /** Resolves when the backend has read everything written so far (flush at shutdown). */
  drain(): Future {
    const d = new Drained(this.written);
    this.drains.push(d);
    this.check();
    return d;
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
    this.check();
  }

  private pump(): void {
    let sent = false;
    while (this.queue.length > 0) {
      const b = this.queue[0];
      const n = this.out.write(b.dataStart + this.off, b.length - this.off);
      if (n < 0) {
        this.error = "the console backend corrupted the ring indices";
        return;
      }
      if (n == 0) break; // full: wait for the backend's event
      sent = true;
      this.off += n;
      this.placed += <u64>n;
      if (this.off == b.length) {
        this.queue.shift();
        this.off = 0;
      }
    }
    if (sent) this.ch.notify();
  }

  private check(): void {
    const inRing = this.out.used();
    if (inRing < 0) return;
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
