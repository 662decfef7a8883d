// Grant tables (runtime/xen/gnttab.ts, ABI.md §9) against the harness's strict
// table. The test offers two dom0 frames (refs on the command line) and maps
// the guest's grant from a xenstore watch (test/runtime/xentest.test.ts).
// gnttabExport runs under real Xen only (test/xen/boot.test.ts, with gnt-peer.c).
import { gnttab, iopage, sched, time, xenstore } from "../../runtime";
import * as abi from "../../runtime/abi";
import { Watch, Xenstore } from "../../runtime/xen/xenstore";
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

/** The byte at offset i of the page gnttabExport() grants (gnt-peer.c's "map" mode checks it). */
function exportByte(i: i32): u8 {
  return <u8>((i * 7 + 0x5a) & 0xff);
}

/** Waits (≤ 120 s, or until dom0 writes "failed") until data/export/dom0 reads `want`, woken by the watch `w` on it. */
function awaitDom0(xs: Xenstore, w: Watch, want: string): bool {
  const until = time.monotonic() + 120 * time.NS_PER_S;
  while (time.monotonic() < until) {
    const r = sched.waitFor(xs.read("data/export/dom0"), 5 * time.NS_PER_S);
    if (r.ok && r.text() == want) return true;
    if (r.ok && r.text() == "failed") return false;
    sched.waitFor(w.next(), 5 * time.NS_PER_S);
  }
  return false;
}

/** Under real Xen: the guest grants a page to dom0, which maps it with gntdev
 *  (test/xen/gnt-peer.c "map") and says so in data/export/dom0; end_access is
 *  -EBUSY while dom0 maps the page and 0 once it has unmapped it. */
export function gnttabExport(): void {
  const xs = xenstore.open();
  const page = iopage.alloc();
  check(page != 0, "an I/O page to grant");
  if (page == 0) return;
  for (let i = 0; i < 4096; i++) store<u8>(page + i, exportByte(i));
  const g = gnttab.grant(0, page, true);
  check(g != null, "granted the page to dom0 read-only");
  if (g == null) return;
  const w = xs.watch("data/export/dom0", "export");
  const domid = sched.waitFor(xs.read("domid"), 5 * time.NS_PER_S);
  check(domid.ok, "read our domid");
  check(sched.waitFor(xs.write("data/export/domid", domid.ok ? domid.text() : "?"), 5 * time.NS_PER_S).ok, "published our domid");
  check(sched.waitFor(xs.write("data/export/ref", g!.ref.toString()), 5 * time.NS_PER_S).ok, "published the ref");
  check(awaitDom0(xs, w, "mapped"), "dom0 says it mapped the page");
  check(g!.end() == -abi.EBUSY, "end_access while dom0 maps the page is -EBUSY");
  check(sched.waitFor(xs.write("data/export/guest", "check-done"), 5 * time.NS_PER_S).ok, "told dom0 the check is done");
  check(awaitDom0(xs, w, "unmapped"), "dom0 says it unmapped the page");
  check(g!.end() == 0, "end_access after dom0 unmapped is 0");
  check(g!.end() == -abi.EINVAL, "end_access again is -EINVAL");
}
