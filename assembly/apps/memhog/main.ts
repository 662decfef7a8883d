// memhog: allocates without bound and keeps everything alive, to show (and test) what
// running out of memory looks like: the allocator's clear panic ("out of memory: ...",
// assembly/runtime/oom.ts) and a domain shut down as crashed, never a bare trap.
// With the argument "io" it first takes 64 I/O pages, so the report shows them.
import { console, boot, iopage } from "../../runtime";

const CHUNK: i32 = 64 << 10;

if (boot.args().includes("io")) {
  for (let i = 0; i < 64; i++) if (iopage.alloc() == 0) console.log("memhog: no memory for I/O page " + i.toString());
}

const kept = new Array<Uint8Array>();
let kib: i64 = 0;
for (;;) {
  const b = new Uint8Array(CHUNK);
  b[CHUNK - 1] = 1; // touched, so nothing can be optimised away
  kept.push(b);
  kib += CHUNK >> 10;
  if (kib % 4096 == 0) console.log("memhog: " + kib.toString() + " KiB kept");
  if (kept.length < 0) break; // never: the loop ends only in the out-of-memory panic
}
console.log("TEST FAIL: the allocation loop ended");
