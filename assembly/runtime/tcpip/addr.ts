// IPv4 addresses as lwIP holds them: a u32 whose four bytes, in memory, are the address in
// network order (10.0.0.2 is 0x0200000a on little-endian wasm). Parsing is strict: four
// decimal parts of 0-255, no signs, spaces, leading zeros beyond "0" or other forms.

/** An address from its four parts (a.b.c.d). */
export function ip4(a: u32, b: u32, c: u32, d: u32): u32 {
  return (a & 0xff) | ((b & 0xff) << 8) | ((c & 0xff) << 16) | ((d & 0xff) << 24);
}

/** "10.0.0.2" → the address; -1 when s is not a dotted-quad IPv4 address. */
export function parse(s: string): i64 {
  let out: u32 = 0;
  let part = 0;
  let value: u32 = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // a final "." closes the last part
    if (c == 46) {
      if (digits == 0 || part > 3) return -1;
      out |= value << (<u32>part * 8);
      part++;
      value = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return -1;
    if (digits > 0 && value == 0) return -1; // "01": not a decimal number as written
    value = value * 10 + <u32>(c - 48);
    digits++;
    if (value > 255) return -1;
  }
  return part == 4 ? <i64>out : -1;
}

/** The address as text: "10.0.0.2". */
export function text(a: u32): string {
  return (a & 0xff).toString() + "." + ((a >> 8) & 0xff).toString() + "." + ((a >> 16) & 0xff).toString() + "." + (a >> 24).toString();
}

/** "10.0.0.2:80". */
export function endpoint(a: u32, port: u32): string {
  return text(a) + ":" + port.toString();
}

/** The netmask of a prefix length (0-32): 24 → 255.255.255.0. */
export function maskOf(prefix: i32): u32 {
  if (prefix <= 0) return 0;
  const host: u32 = prefix >= 32 ? 0xffffffff : ~(0xffffffff >> <u32>prefix);
  return bswap<u32>(host); // network order in memory
}

/** The prefix length of a netmask, or -1 when its ones are not contiguous (255.0.255.0). */
export function prefixOf(mask: u32): i32 {
  const host = bswap<u32>(mask);
  const n = <i32>clz<u32>(~host);
  return maskOf(n) == mask ? n : -1;
}
