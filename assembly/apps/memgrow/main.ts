// memgrow: grows the linear memory one 64 KiB page at a time with raw memory.grow(1)
// until the host refuses (it must return -1, not crash), checking that every new page
// reads as zero and holds what is written to each of its 4 KiB frames. Then reports
// how many pages it got and powers off. It also prints the time from the host's entry
// point to here (boot_info.boot_ns), the "entry -> main" figure of the image.
import { console, boot, time, exit } from "../../runtime";

const mainNs = time.monotonic();
const info = boot.info();
console.log("memgrow: entry->main " + ((mainNs - info.bootNs) / time.NS_PER_US).toString() + " us");
console.log("memgrow: mem_limit " + (info.memLimit >> 10).toString() + " KiB, memory.size " + memory.size().toString() + " pages");

let pages = 0;
let bad = -1;
for (;;) {
  const old = memory.grow(1);
  if (old < 0) break;
  const base = <usize>old << 16;
  for (let off: usize = 0; off < 65536; off += 4096) {
    const tag = <u32>old * 65536 + <u32>off + 1;
    if (load<u32>(base + off) != 0) bad = old; // memory.grow must hand out zeroed pages
    store<u32>(base + off, tag);
    if (load<u32>(base + off) != tag) bad = old;
  }
  pages++;
}

console.log("memgrow: memory.grow(1) failed cleanly after " + pages.toString() + " pages (" + (pages >> 4).toString() + " MiB)");
if (bad >= 0) {
  console.log("TEST FAIL: page " + bad.toString() + " was not zeroed or did not hold a write");
  exit(1);
}
if (pages == 0) {
  console.log("TEST FAIL: memory.grow never succeeded");
  exit(1);
}
console.log("TEST PASS");
