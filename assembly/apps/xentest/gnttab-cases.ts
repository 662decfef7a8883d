// Grant tables (runtime/xen/gnttab.ts, ABI.md §9) against the harness's strict
// table. The test offers two dom0 frames (refs on the command line) and maps
// the guest's grant from a xenstore watch (test/runtime/xentest.test.ts).
import { gnttab, iopage, sched, time, xenstore } from "../../runtime";
import * as abi from "../../runtime/abi";
import { check, eq } from "../../runtime/testing";

function text(p: usize, n: i32): string {
  return String.UTF8.decodeUnsafe(p, n);
}

function put(p: usize, s: string): void {
  const b = String.UTF8.encode(s);
  memory.copy(p, changetype<usize>(b), b.byteLength);
}

export function gnttabCases(roRef: i32, rwRef: i32): void {
  const pages0 = iopage.inUse();
  // Mapping dom0's frames.
  check(gnttab.map(0, 12345, true) == null && gnttab.lastError == abi.EINVAL, "mapping an unknown ref is -EINVAL");
  check(gnttab.map(0, roRef, false) == null && gnttab.lastError == abi.EPERM, "mapping a read-only grant writable is -EPERM");
  check(gnttab.map(77, roRef, true) == null && gnttab.lastError == abi.ESRCH, "mapping from a domain that does not exist is -ESRCH");
  const ro = gnttab.map(0, roRef, true);
  check(ro != null, "a read-only grant maps read-only");
  if (ro == null) return;
  eq(text(ro!.page, 15), "read-only frame", "the mapped page shows dom0's frame");
  check(gnttab.map(0, roRef, true) == null && gnttab.lastError == abi.EBUSY, "mapping the same grant twice is -EBUSY");
  check(ro!.unmap() == 0, "unmap returns 0");
  check(ro!.unmap() == -abi.EINVAL, "unmapping twice is -EINVAL");
  check(load<u8>(ro!.page) == 0, "after unmap the page shows its own (zeroed) contents again");

  const rw = gnttab.map(0, rwRef, false);
  check(rw != null, "a writable grant maps writable");
  if (rw == null) return;
  put(rw!.page, "guest wrote this");
  check(rw!.unmap() == 0, "unmap of the writable mapping");
  check(iopage.inUse() == pages0, "failed maps and unmaps gave every I/O page back");

  const page = iopage.alloc();
  check(abi.gnttab_grant_access(0, page + 8, 1) == -abi.EINVAL, "granting a misaligned address is -EINVAL");
  check(abi.gnttab_grant_access(0, 0xffff_f000, 1) == -abi.EFAULT, "granting a page outside memory is -EFAULT");
  check(abi.gnttab_end_access(4095) == -abi.EINVAL, "ending an unknown ref is -EINVAL");

  // Granting a page of ours; dom0 maps it when we publish the ref.
  put(page, "hello dom0");
  const g = gnttab.grant(0, page, true);
  check(g != null && g!.ref >= 8, "grant_access gives a ref >= 8 (0-7 are reserved)");
  const xs = xenstore.open();
  const wr = sched.wait(xs.write("data/grant-ref", g!.ref.toString()));
  check(wr.ok, "published the ref");
  const res = sched.waitFor(xs.read("data/grant-result"), time.NS_PER_S);
  eq(res.ok ? res.text() : res.error, "read:hello dom0;write:refused", "dom0 read our page and could not write it");
  check(g!.end() == -abi.EBUSY, "end_access while dom0 maps the page is -EBUSY");
  sched.wait(xs.write("data/grant-release", "1"));
  check(g!.end() == 0, "end_access after dom0 unmapped is 0");
  check(g!.end() == -abi.EINVAL, "end_access again is -EINVAL");
}

/** Writes through a read-only mapping: the harness (like Xen) must fault. */
export function gnttabWriteRo(roRef: i32): void {
  const ro = gnttab.map(0, roRef, true);
  check(ro != null, "mapped read-only");
  if (ro == null) return;
  store<u8>(ro!.page, 0x21);
  ro!.unmap();
  check(false, "a write through a read-only mapping went unnoticed");
}
