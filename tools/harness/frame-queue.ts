// A bounded queue of Ethernet frames in a SharedArrayBuffer, between two threads:
// one producer, one consumer (the TAP wire, tap.ts: the main thread and the
// guest's worker). A frame is one record — a 4-byte length, the bytes, padding
// to 4 — and is never split: a record that does not fit before the end of the
// ring leaves a wrap marker and starts at its beginning. A full queue refuses a
// frame (push returns false); the producer waits for room or drops it, as a
// wire would. The consumer checks every length it reads against the bounds and
// the bytes written, and throws naming the queue when one is wrong.
//
// Header words (Int32, free-running u32 counters where they count bytes):
//   SEQ    bumped and notified after each push: the consumer waits on it
//          (the guest's block() does: Domain.wake is this header, word 0)
//   HEAD   bytes written           TAIL   bytes read
//   FREED  bumped and notified after each pop: a producer waits on it for room
//   PUSHED, DROPPED                counts (DROPPED: frames the producer gave up on)
//   CLOSED set once by either side: nothing more will come

/** The largest frame: netfront sends up to 65535 bytes; the TAP helper's limit too (tap-helper.c). */
export const MAX_FRAME = 65536;
export const Q = { SEQ: 0, HEAD: 1, TAIL: 2, FREED: 3, PUSHED: 4, DROPPED: 5, CLOSED: 6 } as const;
const HEADER_BYTES = 64;
const LEN = 4;
/** A record length that means "the rest of the ring is unused: the next record is at offset 0". */
const WRAP = 0xffffffff;

const align4 = (n: number) => (n + 3) & ~3;

export class FrameQueueError extends Error {}

export class FrameQueue {
  /** The header: word 0 (SEQ) is what a consumer waits on. */
  readonly header: Int32Array;
  readonly capacity: number;
  private readonly data: Uint8Array;
  private readonly dv: DataView;

  /** Attaches to the queue in `sab` (made by FrameQueue.create, possibly in another thread). */
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly name: string,
  ) {
    const cap = sab.byteLength - HEADER_BYTES;
    if (cap < 2 * (LEN + MAX_FRAME) || (cap & (cap - 1)) !== 0)
      throw new FrameQueueError(
        `${name}: a queue of ${sab.byteLength} bytes: it needs a power of two ≥ ${2 * (LEN + MAX_FRAME)} after its header`,
      );
    this.capacity = cap;
    this.header = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(sab, HEADER_BYTES, cap);
    this.dv = new DataView(sab, HEADER_BYTES, cap);
  }

  /** A new, empty queue of `capacity` bytes (a power of two: free-running counters wrap with it). */
  static create(name: string, capacity = 1 << 22): FrameQueue {
    return new FrameQueue(new SharedArrayBuffer(HEADER_BYTES + capacity), name);
  }

  private get head(): number {
    return Atomics.load(this.header, Q.HEAD) >>> 0;
  }
  private get tail(): number {
    return Atomics.load(this.header, Q.TAIL) >>> 0;
  }

  /** Bytes in use, records and wrap padding. */
  get used(): number {
    return (this.head - this.tail) >>> 0;
  }

  get closed(): boolean {
    return Atomics.load(this.header, Q.CLOSED) !== 0;
  }

  close(): void {
    Atomics.store(this.header, Q.CLOSED, 1);
    // Both kinds of waiter wake up and see it.
    Atomics.add(this.header, Q.SEQ, 1);
    Atomics.notify(this.header, Q.SEQ);
    Atomics.add(this.header, Q.FREED, 1);
    Atomics.notify(this.header, Q.FREED);
  }

  /** Wakes the consumer with no frame (it looks at whatever else the producer shares). */
  poke(): void {
    Atomics.add(this.header, Q.SEQ, 1);
    Atomics.notify(this.header, Q.SEQ);
  }

  count(word: "PUSHED" | "DROPPED"): number {
    return Atomics.load(this.header, Q[word]) >>> 0;
  }

  /** The producer gave up on a frame (the queue stayed full). */
  dropped(): void {
    Atomics.add(this.header, Q.DROPPED, 1);
  }

  /** Appends a frame, whole; false when there is no room for it now. Throws on a length outside 1..MAX_FRAME. */
  push(frame: Uint8Array): boolean {
    if (frame.length < 1 || frame.length > MAX_FRAME)
      throw new FrameQueueError(`${this.name}: a frame of ${frame.length} bytes: a frame has 1..${MAX_FRAME}`);
    const cap = this.capacity;
    const head = this.head;
    const free = cap - ((head - this.tail) >>> 0);
    const pos = head & (cap - 1);
    const rec = LEN + align4(frame.length);
    const skip = pos + rec > cap ? cap - pos : 0; // never split: wrap to the start
    if (skip + rec > free) return false;
    if (skip) this.dv.setUint32(pos, WRAP, true);
    const at = skip ? 0 : pos;
    this.dv.setUint32(at, frame.length, true);
    this.data.set(frame, at + LEN);
    // The record's bytes are written before HEAD moves past them (the store is sequentially consistent).
    Atomics.store(this.header, Q.HEAD, (head + skip + rec) | 0);
    Atomics.add(this.header, Q.PUSHED, 1);
    Atomics.add(this.header, Q.SEQ, 1);
    Atomics.notify(this.header, Q.SEQ);
    return true;
  }

  /** The oldest frame (a copy), or undefined when the queue is empty. Throws when a record is malformed. */
  pop(): Uint8Array | undefined {
    const cap = this.capacity;
    // HEAD is read before the records it covers (sequentially consistent load).
    const head = this.head;
    let tail = this.tail;
    for (;;) {
      const used = (head - tail) >>> 0;
      if (used === 0) return undefined;
      if (used > cap || used < LEN) throw new FrameQueueError(`${this.name}: ${used} bytes in use in a queue of ${cap}: corrupt counters`);
      const pos = tail & (cap - 1);
      const len = this.dv.getUint32(pos, true);
      if (len === WRAP) {
        if (cap - pos > used) throw new FrameQueueError(`${this.name}: a wrap marker at ${pos} past the ${used} bytes written`);
        tail = (tail + cap - pos) >>> 0;
        continue;
      }
      if (len < 1 || len > MAX_FRAME || pos + LEN + len > cap || LEN + align4(len) > used)
        throw new FrameQueueError(`${this.name}: a record of ${len} bytes at ${pos} (${used} bytes in use; a frame has 1..${MAX_FRAME})`);
      const frame = this.data.slice(pos + LEN, pos + LEN + len);
      // The bytes are copied out before TAIL frees them for the producer.
      Atomics.store(this.header, Q.TAIL, (tail + LEN + align4(len)) | 0);
      Atomics.add(this.header, Q.FREED, 1);
      Atomics.notify(this.header, Q.FREED);
      return frame;
    }
  }
}
