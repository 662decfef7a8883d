// Console output: UTF-8 through the console_write import (ABI.md §3.1).
// Encoding goes through a static scratch buffer so that printing never
// allocates: abort() and panic() use it when the heap may be broken.
import { console_write } from "./abi";

const SCRATCH_SIZE: i32 = 512;
const scratch: usize = memory.data(SCRATCH_SIZE);

/** Writes raw bytes; a host error ends the domain (output is never dropped silently). */
export function writeBytes(ptr: usize, len: i32): void {
  if (len <= 0) return;
  const rc = console_write(ptr, len);
  if (rc != len) unreachable(); // the console is gone: nothing useful can be said
}

/** Writes a string as UTF-8, without a newline. */
export function write(s: string): void {
  const n = s.length;
  let fill: i32 = 0;
  for (let i = 0; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    // Join a surrogate pair into one code point; a lone surrogate becomes U+FFFD.
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
      const d = <u32>s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
    if (fill > SCRATCH_SIZE - 4) {
      writeBytes(scratch, fill);
      fill = 0;
    }
    fill += encodeUtf8(scratch + <usize>fill, c);
  }
  writeBytes(scratch, fill);
}

/** Writes a string and a newline. */
export function log(s: string): void {
  write(s);
  write("\n");
}

// Encodes one code point at p; returns the byte count.
function encodeUtf8(p: usize, c: u32): i32 {
  if (c < 0x80) {
    store<u8>(p, c);
    return 1;
  }
  if (c < 0x800) {
    store<u8>(p, 0xc0 | (c >> 6));
    store<u8>(p + 1, 0x80 | (c & 63));
    return 2;
  }
  if (c < 0x10000) {
    store<u8>(p, 0xe0 | (c >> 12));
    store<u8>(p + 1, 0x80 | ((c >> 6) & 63));
    store<u8>(p + 2, 0x80 | (c & 63));
    return 3;
  }
  store<u8>(p, 0xf0 | (c >> 18));
  store<u8>(p + 1, 0x80 | ((c >> 12) & 63));
  store<u8>(p + 2, 0x80 | ((c >> 6) & 63));
  store<u8>(p + 3, 0x80 | (c & 63));
  return 4;
}
