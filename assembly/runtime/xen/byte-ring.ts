// A one-way byte ring as io/console.h and io/xs_wire.h define them: a
// power-of-two data area and two free-running u32 indices, `cons` and `prod`,
// with byte i at data[i & (size - 1)]. The consoles' `out` and `in` rings and
// xenstore's `req` and `rsp` rings are all this shape at different offsets.
// The peer writes one of the indices, so every difference is checked.
// ByteQueue is the producer's side both clients share: messages queued in
// order and copied in as room appears (console-ring.ts, xenstore.ts).
import { mb, rmb, wmb } from "./barrier";

export class ByteRing {
  /** Set when the peer's index is impossible (more than `size` apart); no more I/O then. */
  corrupt: bool = false;

  constructor(
    public data: usize,
    public size: u32,
    public consAt: usize,
    public prodAt: usize,
  ) {}

  /** Bytes written and not yet consumed, or -1 when the indices are corrupt. */
  used(): i32 {
    const n = load<u32>(this.prodAt) - load<u32>(this.consAt);
    if (n > this.size) {
      this.corrupt = true;
      return -1;
    }
    return <i32>n;
  }

  /** Producer: copies up to len bytes in; returns how many fit (0 when full), -1 when corrupt. */
  write(src: usize, len: i32): i32 {
    const cons = load<u32>(this.consAt);
    const prod = load<u32>(this.prodAt);
    mb(); // the indices are read before any slot is written: the consumer may still be reading them
    const fill = prod - cons;
    if (fill > this.size) {
      this.corrupt = true;
      return -1;
    }
    const n = min(<u32>len, this.size - fill);
    const mask = this.size - 1;
    for (let i: u32 = 0; i < n; i++) store<u8>(this.data + <usize>((prod + i) & mask), load<u8>(src + i));
    wmb(); // the bytes are in the ring before prod says so
    store<u32>(this.prodAt, prod + n);
    return <i32>n;
  }

  /** Consumer: copies up to len bytes out; returns how many (0 when empty), -1 when corrupt. */
  read(dst: usize, len: i32): i32 {
    const cons = load<u32>(this.consAt);
    const prod = load<u32>(this.prodAt);
    rmb(); // prod is read before the bytes it covers
    const avail = prod - cons;
    if (avail > this.size) {
      this.corrupt = true;
      return -1;
    }
    const n = min(<u32>len, avail);
    const mask = this.size - 1;
    for (let i: u32 = 0; i < n; i++) store<u8>(dst + i, load<u8>(this.data + <usize>((cons + i) & mask)));
    mb(); // the bytes are copied out before cons frees their slots for the producer
    store<u32>(this.consAt, cons + n);
    return <i32>n;
  }
}

/**
 * Messages waiting for room in a ByteRing, sent in order: flush() copies as
 * much as fits, a message possibly in pieces, and the rest waits for the next
 * flush (after the consumer's event). Each message carries a tag (xenstore: its
 * request id) so one not yet begun can be withdrawn.
 */
/** A message in a ByteQueue and its tag. */
class Queued {
  constructor(
    public bytes: Uint8Array,
    public tag: u32,
  ) {}
}

export class ByteQueue {
  private msgs: Array<Queued> = new Array<Queued>();
  /** Bytes of the first message already in the ring. */
  private off: i32 = 0;
  /** Bytes placed in the ring since the start. */
  placed: u64 = 0;

  constructor(public ring: ByteRing) {}

  /** Messages not fully in the ring yet. */
  get length(): i32 {
    return this.msgs.length;
  }

  push(m: Uint8Array, tag: u32 = 0): void {
    this.msgs.push(new Queued(m, tag));
  }

  /** Copies queued bytes into the ring while it has room; false when the consumer corrupted the indices. */
  flush(): bool {
    const msgs = this.msgs;
    while (msgs.length > 0) {
      const m = msgs[0].bytes;
      const n = this.ring.write(m.dataStart + this.off, m.length - this.off);
      if (n < 0) return false;
      if (n == 0) break; // full: the consumer notifies when it has taken some
      this.off += n;
      this.placed += <u64>n;
      if (this.off == m.length) {
        msgs.shift();
        this.off = 0;
      }
    }
    return true;
  }

  /** The queue position of the message tagged `tag`, or -1. */
  indexOf(tag: u32): i32 {
    const msgs = this.msgs;
    for (let i = 0; i < msgs.length; i++) if (msgs[i].tag == tag) return i;
    return -1;
  }

  /** Withdraws message i if none of it is in the ring yet; false when it has begun. */
  withdraw(i: i32): bool {
    const msgs = this.msgs;
    const n = msgs.length;
    if (i < 0 || i >= n || (i == 0 && this.off > 0)) return false;
    // The later ones move up a place (splice would also build an array of the removed one).
    for (let j = i + 1; j < n; j++) msgs[j - 1] = msgs[j];
    msgs.length = n - 1;
    return true;
  }

  clear(): void {
    this.msgs.length = 0;
    this.off = 0;
  }
}
