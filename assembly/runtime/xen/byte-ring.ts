// A one-way byte ring as io/console.h and io/xs_wire.h define them: a
// power-of-two data area and two free-running u32 indices, `cons` and `prod`,
// with byte i at data[i & (size - 1)]. The consoles' `out` and `in` rings and
// xenstore's `req` and `rsp` rings are all this shape at different offsets.
// The peer writes one of the indices, so every difference is checked.
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
