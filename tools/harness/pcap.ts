// A capture of Ethernet frames in the classic libpcap format (tcpdump's
// "pcap-savefile", version 2.4, LINKTYPE_ETHERNET), for reading a failing
// test's traffic with `tcpdump -r` or Wireshark.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface CapturedFrame {
  /** Nanoseconds since the Unix epoch. */
  atNs: bigint;
  /** "tx": from the guest; "rx": to the guest. Not part of the file format (classic pcap has no direction). */
  dir: "tx" | "rx";
  frame: Uint8Array;
  /** The frame's length on the wire when `frame` holds only its first bytes (a capture over its budget). */
  origLen?: number;
}

const MAGIC = 0xa1b2c3d4; // microsecond timestamps
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 65535;

/** The pcap file's bytes. */
export function pcapBytes(frames: readonly CapturedFrame[]): Uint8Array {
  const size = 24 + frames.reduce((n, f) => n + 16 + Math.min(f.frame.length, SNAPLEN), 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setInt32(8, 0, true); // thiszone
  dv.setUint32(12, 0, true); // sigfigs
  dv.setUint32(16, SNAPLEN, true);
  dv.setUint32(20, LINKTYPE_ETHERNET, true);
  let at = 24;
  for (const f of frames) {
    const us = f.atNs / 1000n;
    const incl = Math.min(f.frame.length, SNAPLEN);
    dv.setUint32(at, Number(us / 1_000_000n), true);
    dv.setUint32(at + 4, Number(us % 1_000_000n), true);
    dv.setUint32(at + 8, incl, true);
    dv.setUint32(at + 12, Math.max(f.origLen ?? 0, f.frame.length), true);
    out.set(f.frame.subarray(0, incl), at + 16);
    at += 16 + incl;
  }
  return out;
}

/** Writes the capture to `path` (its folder made if needed); returns the path. */
export function writePcap(path: string, frames: readonly CapturedFrame[]): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, pcapBytes(frames));
  return path;
}
