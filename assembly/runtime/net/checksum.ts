// The Internet checksum (RFC 1071) and the TCP/UDP checksum of an IPv4 frame
// (RFC 791, 793, 768), for frames that arrive with NETRXF_csum_blank: dom0's
// own stack leaves the transport checksum to "hardware" (checksum offload), so
// the field holds only the pseudo-header sum, and the receiver fills or skips it.

const ETH_HLEN: i32 = 14;
const ETH_P_IP: u16 = 0x0800;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/** The one's-complement sum of `len` bytes at `p` added to `sum`, not folded (big-endian 16-bit words). */
export function sumBytes(p: usize, len: i32, sum: u64 = 0): u64 {
  let i = 0;
  for (; i + 1 < len; i += 2) sum += (<u64>load<u8>(p + i) << 8) | <u64>load<u8>(p + i + 1);
  if (i < len) sum += <u64>load<u8>(p + i) << 8;
  return sum;
}

/** Folds a sum to 16 bits and complements it: the checksum to store. */
export function fold(sum: u64): u16 {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return <u16>~(<u32>sum) & 0xffff;
}

/** The Internet checksum of `len` bytes at `p` (0 when the bytes include a valid checksum). */
export function checksum(p: usize, len: i32): u16 {
  return fold(sumBytes(p, len));
}

/** Stores v big-endian at p. */
// @ts-ignore: decorator
@inline export function storeBe16(p: usize, v: u16): void {
  store<u8>(p, <u8>(v >> 8));
  store<u8>(p + 1, <u8>v);
}

/** Reads a big-endian u16 at p. */
// @ts-ignore: decorator
@inline export function loadBe16(p: usize): u16 {
  return (<u16>load<u8>(p) << 8) | <u16>load<u8>(p + 1);
}

/** Where an IPv4 frame's TCP or UDP segment and its checksum field are (offsets in the frame). */
class Transport {
  field: i32 = -1;
  start: i32 = 0;
  length: i32 = 0;
  proto: u8 = 0;
}

// Fills t for an unfragmented IPv4 TCP or UDP frame; false for anything else (not IPv4, a fragment, a bad length).
function transport(p: usize, len: i32, t: Transport): bool {
  if (len < ETH_HLEN + 20 || loadBe16(p + 12) != ETH_P_IP) return false;
  const ip = p + ETH_HLEN;
  const vihl = load<u8>(ip);
  const ihl = <i32>(vihl & 0x0f) * 4;
  if (vihl >> 4 != 4 || ihl < 20) return false;
  const total = <i32>loadBe16(ip + 2);
  if (total < ihl || ETH_HLEN + total > len) return false;
  if ((loadBe16(ip + 6) & 0x3fff) != 0) return false; // MF set or an offset: a fragment
  const proto = load<u8>(ip + 9);
  const seg = total - ihl;
  let field = 0;
  if (proto == IPPROTO_TCP) {
    if (seg < 20) return false;
    field = 16;
  } else if (proto == IPPROTO_UDP) {
    if (seg < 8) return false;
    field = 6;
  } else return false;
  t.start = ETH_HLEN + ihl;
  t.length = seg;
  t.field = t.start + field;
  t.proto = proto;
  return true;
}

const scratch = new Transport();

/** The pseudo-header sum (RFC 793 §3.1, RFC 768) of the IPv4 frame at p, not folded. */
function pseudoSum(p: usize, t: Transport): u64 {
  const ip = p + ETH_HLEN;
  let s = sumBytes(ip + 12, 8); // source and destination addresses
  s += <u64>t.proto;
  s += <u64>t.length;
  return s;
}

/**
 * Fills the TCP or UDP checksum of the IPv4 frame of `len` bytes at `p`,
 * whatever the field held (a NETRXF_csum_blank frame holds the pseudo-header
 * sum there). True when done; false when the frame is not an unfragmented
 * IPv4 TCP or UDP frame (then nothing is written).
 */
export function fillChecksumAt(p: usize, len: i32): bool {
  const t = scratch;
  if (!transport(p, len, t)) return false;
  storeBe16(p + t.field, 0);
  let c = fold(sumBytes(p + t.start, t.length, pseudoSum(p, t)));
  if (t.proto == IPPROTO_UDP && c == 0) c = 0xffff; // RFC 768: 0 means "no checksum"
  storeBe16(p + t.field, c);
  return true;
}

/**
 * Prepares the IPv4 TCP or UDP frame at p for NETTXF_csum_blank: its checksum
 * field gets the pseudo-header sum, folded, not complemented (what Linux's
 * CHECKSUM_PARTIAL holds), and the backend completes it. False for any other frame.
 */
export function blankChecksumAt(p: usize, len: i32): bool {
  const t = scratch;
  if (!transport(p, len, t)) return false;
  storeBe16(p + t.field, <u16>(~(<u32>fold(pseudoSum(p, t))) & 0xffff));
  return true;
}

/** fillChecksumAt over a frame in a Uint8Array. */
export function fillChecksum(frame: Uint8Array): bool {
  return fillChecksumAt(frame.dataStart, frame.length);
}

/**
 * Whether the TCP or UDP checksum of the IPv4 frame at p verifies (a UDP
 * checksum of 0, "none sent", verifies). False for anything else.
 */
export function transportChecksumOk(p: usize, len: i32): bool {
  const t = scratch;
  if (!transport(p, len, t)) return false;
  if (t.proto == IPPROTO_UDP && loadBe16(p + t.field) == 0) return true;
  return fold(sumBytes(p + t.start, t.length, pseudoSum(p, t))) == 0;
}
