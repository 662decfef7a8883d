// The harness's grant table and event channels on their own: each refusal the
// real hypervisor makes, made here too.
import { describe, expect, test } from "vitest";
import { GrantTable, GrantError } from "../../tools/harness/grant-table.ts";
import { EventChannels } from "../../tools/harness/event-channels.ts";
import { GuestFault, DOMID_SELF } from "../../tools/harness/errno.ts";

const mem = () => {
  const buf = new ArrayBuffer(8 * 4096);
  return { buf, gt: new GrantTable(1, () => buf), bytes: new Uint8Array(buf) };
};

describe("grant table", () => {
  test("the guest's grants: refs from 8, checked addresses, end access refused while mapped", () => {
    const { gt } = mem();
    expect(gt.grantAccess(0, 4096 + 1, 0)).toBe(-22);
    expect(gt.grantAccess(0, 8 * 4096, 0)).toBe(-14);
    expect(gt.grantAccess(42, 4096, 0)).toBe(-3);
    const ref = gt.grantAccess(0, 4096, 1);
    expect(ref).toBe(8);
    const m = gt.backendMap(ref, true);
    expect(gt.endAccess(ref)).toBe(-16);
    m.unmap();
    expect(gt.endAccess(ref)).toBe(0);
    expect(gt.endAccess(ref)).toBe(-22);
  });

  test("dom0 cannot map unknown refs, map twice, map read-only grants writable, or write through them", () => {
    const { gt } = mem();
    expect(() => gt.backendMap(99, true)).toThrow(/unknown ref/);
    const ro = gt.grantAccess(0, 4096, 1);
    expect(() => gt.backendMap(ro, false)).toThrow(/read-only grant mapped writable/);
    const m = gt.backendMap(ro, true);
    expect(() => gt.backendMap(ro, true)).toThrow(/double map/);
    expect(() => m.write(0, new Uint8Array([1]))).toThrow(GrantError);
    expect(() => m.read(4090, 10)).toThrow(/outside the page/);
    m.unmap();
    expect(() => m.read(0, 1)).toThrow(/after unmap/);
    const self = gt.grantAccess(DOMID_SELF, 2 * 4096, 0);
    expect(() => gt.backendMap(self, false)).toThrow(/granted to domain 1, not to dom0/);
  });

  test("a guest mapping shows the frame, writes reach dom0, unmap restores the page", () => {
    const { gt, bytes } = mem();
    bytes.fill(7, 4096, 8192);
    const frame = new Uint8Array(4096).fill(1);
    const ref = gt.offer(frame, false);
    const h = gt.map(0, ref, 4096, 0);
    expect(h).toBe(0);
    expect(bytes[4096]).toBe(1);
    expect(gt.map(0, ref, 2 * 4096, 0)).toBe(-16); // double map
    bytes[4096] = 42;
    expect(gt.frame(ref)[0]).toBe(42);
    expect(gt.unmap(h)).toBe(0);
    expect(bytes[4096]).toBe(7);
    expect(gt.frame(ref)[0]).toBe(42);
    expect(gt.unmap(h)).toBe(-22);
  });

  test("a guest write to a read-only mapping is a fault", () => {
    const { gt, bytes } = mem();
    const ref = gt.offer(new Uint8Array(4096), true);
    expect(gt.map(0, ref, 4096, 0)).toBe(-1); // EPERM: writable map of a read-only grant
    const h = gt.map(0, ref, 4096, 1);
    gt.checkReadOnly();
    bytes[4096 + 5] = 1;
    expect(() => gt.checkReadOnly()).toThrow(GuestFault);
    expect(() => gt.unmap(h)).toThrow(/write to a read-only grant mapping \(ref 8\) at 0x1005/);
  });
});

describe("event channels", () => {
  test("a backend binds to the guest's unbound port; notifications cross both ways", () => {
    const ev = new EventChannels(1);
    const port = ev.allocUnbound(0);
    expect(ev.notify(port)).toBe(0); // unbound: dropped
    let got = 0;
    const end = ev.backendBind(port, () => got++);
    expect(() => ev.backendBind(port, () => {})).toThrow(/not an unbound port/);
    ev.notify(port);
    expect(got).toBe(1);
    end.notify();
    expect(ev.poll(8)).toEqual([port]);
    expect(ev.poll(8)).toEqual([]);
  });

  test("masked ports stay pending and are not polled until unmasked", () => {
    const ev = new EventChannels(1);
    const a = ev.allocUnbound(DOMID_SELF);
    const b = ev.bindInterdomain(DOMID_SELF, a);
    ev.mask(a);
    ev.notify(b);
    expect(ev.anyPending()).toBe(false);
    expect(ev.poll(8)).toEqual([]);
    ev.unmask(a);
    expect(ev.anyPending()).toBe(true);
    expect(ev.poll(8)).toEqual([a]);
  });

  test("errors: unknown ports, unknown domains, binding a port that is not offered", () => {
    const ev = new EventChannels(1);
    expect(ev.notify(5)).toBe(-22);
    expect(ev.close(5)).toBe(-22);
    expect(ev.allocUnbound(9)).toBe(-3);
    expect(ev.bindInterdomain(0, 77)).toBe(-22);
    expect(ev.bindInterdomain(DOMID_SELF, 77)).toBe(-22);
  });
});
