// Ethernet/IPv4/ARP/ICMP/TCP frames built and parsed by hand for tests (RFC 826, 791,
// 792, 793, 7323, 2018): an independent peer to check the stack against.

export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const ETH_ARP = 0x0806;
export const ETH_IP = 0x0800;
export const IP_ICMP = 1;
export const IP_TCP = 6;
export const IP_UDP = 17;

export function ip4(s: string): Uint8Array {
  const parts = s.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`not an IPv4 address: ${s}`);
  return Uint8Array.from(parts);
}

/** The IPv4 address as lwIP's ip4_addr_t.addr holds it on little-endian wasm: network order in memory. */
export function ip4u32(s: string): number {
  return new DataView(ip4(s).buffer).getUint32(0, true);
}

/** The Internet checksum (RFC 1071) of `data`, starting from `sum`. */
export function checksum(data: Uint8Array, sum = 0): number {
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (data.length % 2) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

export function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  return concat(dst, src, Uint8Array.of(type >> 8, type & 0xff), payload);
}

export function arpRequest(senderMac: Uint8Array, senderIp: string, targetIp: string): Uint8Array {
  const arp = concat(Uint8Array.of(0, 1, 8, 0, 6, 4, 0, 1), senderMac, ip4(senderIp), new Uint8Array(6), ip4(targetIp));
  return ethernet(BROADCAST, senderMac, ETH_ARP, arp);
}

export function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, id = 1): Uint8Array {
  const h = new Uint8Array(20);
  const v = new DataView(h.buffer);
  h[0] = 0x45;
  v.setUint16(2, 20 + payload.length);
  v.setUint16(4, id);
  h[8] = 64;
  h[9] = proto;
  h.set(ip4(src), 12);
  h.set(ip4(dst), 16);
  v.setUint16(10, checksum(h));
  return concat(h, payload);
}

export function icmpEcho(id: number, seq: number, data: Uint8Array): Uint8Array {
  const m = concat(Uint8Array.of(8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff), data);
  new DataView(m.buffer).setUint16(2, checksum(m));
  return m;
}

/** A TCP segment with its checksum over the IPv4 pseudo-header. */
export function tcp(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  options: Uint8Array,
  data = new Uint8Array(),
): Uint8Array {
  const hlen = 20 + options.length;
  if (hlen % 4) throw new Error("TCP options must pad to 4 bytes");
  const seg = concat(new Uint8Array(20), options, data);
  const v = new DataView(seg.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, seq >>> 0);
  v.setUint32(8, ack >>> 0);
  seg[12] = (hlen / 4) << 4;
  seg[13] = flags;
  v.setUint16(14, window);
  const pseudo = concat(ip4(src), ip4(dst), Uint8Array.of(0, IP_TCP, seg.length >> 8, seg.length & 0xff));
  v.setUint16(16, checksum(concat(pseudo, seg)));
  return seg;
}

/** A UDP datagram with its checksum over the IPv4 pseudo-header. */
export function udp(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const d = concat(new Uint8Array(8), data);
  const v = new DataView(d.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, d.length);
  const pseudo = concat(ip4(src), ip4(dst), Uint8Array.of(0, IP_UDP, d.length >> 8, d.length & 0xff));
  v.setUint16(6, checksum(concat(pseudo, d)) || 0xffff);
  return d;
}

export interface ParsedUdp {
  sport: number;
  dport: number;
  data: Uint8Array;
  /** The checksum verifies (or is 0: none sent). */
  checksumOk: boolean;
}

export function parseUdp(ip: ParsedIp): ParsedUdp {
  const d = ip.payload;
  const len = (d[4] << 8) | d[5];
  const pseudo = concat(ip4(ip.src), ip4(ip.dst), Uint8Array.of(0, IP_UDP, len >> 8, len & 0xff));
  const sum = (d[6] << 8) | d[7];
  return {
    sport: (d[0] << 8) | d[1],
    dport: (d[2] << 8) | d[3],
    data: d.subarray(8, len),
    checksumOk: sum === 0 || checksum(concat(pseudo, d.subarray(0, len))) === 0,
  };
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

export interface ParsedFrame {
  dst: Uint8Array;
  src: Uint8Array;
  type: number;
  payload: Uint8Array;
}

export function parseEthernet(f: Uint8Array): ParsedFrame {
  if (f.length < 14) throw new Error(`runt frame of ${f.length} bytes`);
  return { dst: f.subarray(0, 6), src: f.subarray(6, 12), type: (f[12] << 8) | f[13], payload: f.subarray(14) };
}

export interface ParsedIp {
  src: string;
  dst: string;
  proto: number;
  headerOk: boolean;
  payload: Uint8Array;
}

export function parseIpv4(p: Uint8Array): ParsedIp {
  const ihl = (p[0] & 0x0f) * 4;
  const total = (p[2] << 8) | p[3];
  return {
    src: Array.from(p.subarray(12, 16)).join("."),
    dst: Array.from(p.subarray(16, 20)).join("."),
    proto: p[9],
    headerOk: p[0] >> 4 === 4 && checksum(p.subarray(0, ihl)) === 0,
    payload: p.subarray(ihl, total),
  };
}

export interface ParsedTcp {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** kind → option bytes after kind and length. */
  options: Map<number, Uint8Array>;
  checksumOk: boolean;
}

export function parseTcp(ip: ParsedIp): ParsedTcp {
  const s = ip.payload;
  const v = new DataView(s.buffer, s.byteOffset, s.byteLength);
  const hlen = (s[12] >> 4) * 4;
  const options = new Map<number, Uint8Array>();
  for (let i = 20; i < hlen;) {
    const kind = s[i];
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    const len = s[i + 1];
    if (len < 2 || i + len > hlen) throw new Error(`bad TCP option ${kind} of length ${len}`);
    options.set(kind, s.subarray(i + 2, i + len));
    i += len;
  }
  const pseudo = concat(ip4(ip.src), ip4(ip.dst), Uint8Array.of(0, IP_TCP, s.length >> 8, s.length & 0xff));
  return {
    sport: v.getUint16(0),
    dport: v.getUint16(2),
    seq: v.getUint32(4),
    ack: v.getUint32(8),
    flags: s[13],
    window: v.getUint16(14),
    options,
    checksumOk: checksum(concat(pseudo, s)) === 0,
  };
}
