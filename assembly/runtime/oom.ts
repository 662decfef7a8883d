// Out of memory: AssemblyScript's allocator (TLSF) traps with a bare `unreachable`
// when memory.grow refuses. tools/oom/transform.mjs points that trap at
// __morgana_out_of_memory instead, which says what ran out and what to do. Nothing
// here allocates: the heap is exactly what is used up.
import * as abi from "./abi";
import { write, writeBytes } from "./console";

/** 64 KiB wasm pages the I/O page region took from memory.grow (iopage.ts counts them). */
export let ioWasmPages: i32 = 0;

/**
 * The allocator could not grow the heap by `request` bytes: prints
 * `panic: out of memory: ...` with the domain's size and where its memory went,
 * then crashes the domain (exit code of a crash, like panic()).
 */
// @ts-ignore: decorator
@global
export function __morgana_out_of_memory(request: usize): void {
  const buf = memory.data(abi.BOOTINFO_SIZE);
  const rc = abi.boot_info(buf, abi.BOOTINFO_SIZE);
  const domainKiB = rc >= abi.BOOTINFO_SIZE ? load<u64>(buf + abi.BI_NR_PAGES) * 4 : 0;
  const linearKiB = <u64>memory.size() * 64;
  const ioKiB = <u64>ioWasmPages * 64;
  write("panic: out of memory: the heap needs ");
  writeU64((<u64>request + 1023) >> 10);
  write(" KiB more, but the domain's ");
  writeU64(domainKiB >> 10);
  write(" MiB are used up (linear memory ");
  writeU64(linearKiB);
  write(" KiB: heap and data ");
  writeU64(linearKiB - ioKiB);
  write(" KiB, I/O pages ");
  writeU64(ioKiB);
  write(" KiB; the rest is the kernel image and page tables): give the domain more memory (app.json \"memory\", xl `memory =`) or keep less alive\n");
  abi.shutdown(abi.SHUTDOWN_CRASH);
  unreachable();
}

// Decimal without allocating.
function writeU64(v: u64): void {
  const buf = memory.data(20);
  let i: i32 = 20;
  do {
    store<u8>(buf + <usize>--i, 48 + <u8>(v % 10));
    v /= 10;
  } while (v != 0);
  writeBytes(buf + <usize>i, 20 - i);
}
