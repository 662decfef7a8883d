// The harness blkback on its own, driven by a frontend written here in
// TypeScript that can send what a correct frontend never would: malformed
// segments, out-of-range sectors, writes to a read-only disk, read-only or
// unknown grants, too many segments, a foreign protocol. Each is answered
// BLKIF_RSP_ERROR (or EOPNOTSUPP) and named in `errors`.
import { describe, expect, test } from "vitest";
import { Domain } from "../../tools/harness/domain.ts";
import { BLKIF_OP, BLKIF_RSP, DiskOptions, VbdBackend } from "../../tools/harness/blkback.ts";

const RING = 0x1000;
const DATA = 0x2000; // data pages from here
const FE = "/local/domain/1/device/vbd/51712";

interface Seg {
  gref: number;
  first?: number;
  last?: number;
}

/** A domain with 64 KiB of "guest memory", a vbd, and a hand-written frontend connected to it. */
function connect(disk: DiskOptions = {}, feKeys: Record<string, string> = {}) {
  const dom = new Domain({ name: "t" });
  const mem = new ArrayBuffer(64 * 1024);
  dom.memory = () => mem;
  const vbd = new VbdBackend(dom, 51712, disk);
  const dv = new DataView(mem);
  // SHARED_RING_INIT: indices 0, events 1.
  dv.setUint32(RING + 4, 1, true);
  dv.setUint32(RING + 12, 1, true);
  const ringRef = dom.gnttab.grantAccess(0, RING, 0);
  const port = dom.evtchn.allocUnbound(0);
  const xs = dom.xenstored;
  xs.write(`${FE}/ring-ref`, String(ringRef));
  xs.write(`${FE}/event-channel`, String(port));
  xs.write(`${FE}/protocol`, "x86_64-abi");
  for (const [k, v] of Object.entries(feKeys)) xs.write(`${FE}/${k}`, v);
  xs.write(`${FE}/state`, "3");
  let prod = 0;
  let cons = 0;
  /** A data page i at DATA + i*4096, granted to dom0. */
  const grant = (i: number, readonly: boolean) => dom.gnttab.grantAccess(0, DATA + i * 4096, readonly ? 1 : 0);
  const page = (i: number) => new Uint8Array(mem, DATA + i * 4096, 4096);
  /** Sends one struct blkif_request; returns the response's status. */
  const send = (op: number, sector: bigint, segs: Seg[], opts: { nr?: number; handle?: number } = {}) => {
    const at = RING + 64 + (prod % 32) * 112;
    new Uint8Array(mem, at, 112).fill(0);
    dv.setUint8(at, op);
    dv.setUint8(at + 1, opts.nr ?? segs.length);
    dv.setUint16(at + 2, opts.handle ?? 51712, true);
    dv.setBigUint64(at + 8, BigInt(prod + 1000), true);
    dv.setBigUint64(at + 16, sector, true);
    segs.forEach((s, i) => {
      dv.setUint32(at + 24 + 8 * i, s.gref, true);
      dv.setUint8(at + 28 + 8 * i, s.first ?? 0);
      dv.setUint8(at + 29 + 8 * i, s.last ?? 7);
    });
    prod++;
    dv.setUint32(RING, prod, true);
    dom.evtchn.notify(port);
    expect(dv.getUint32(RING + 8, true)).toBe(cons + 1);
    const r = RING + 64 + (cons % 32) * 112;
    cons++;
    expect(dv.getBigUint64(r, true)).toBe(BigInt(prod - 1 + 1000)); // the id is echoed
    return dv.getInt16(r + 10, true);
  };
  return { dom, vbd, grant, page, send };
}

describe("blkback handshake", () => {
  test("connects on Initialised: ring mapped, keys written, state Connected", () => {
    const { vbd, dom } = connect({ sectors: 100 });
    const be = "/local/domain/0/backend/vbd/1/51712";
    expect(vbd.state()).toBe(4);
    expect(dom.xenstored.read(`${be}/sectors`)).toBe("100");
    expect(dom.xenstored.read(`${be}/info`)).toBe("0");
    expect(dom.xenstored.read(`${be}/feature-barrier`)).toBe("1");
    expect(dom.xenstored.read(`${be}/feature-max-indirect-segments`)).toBe("256");
    expect(vbd.errors).toEqual([]);
  });

  test("refuses a protocol other than x86_64-abi, and a ring order beyond its offer", () => {
    expect(connect({}, { protocol: "x86_32-abi" }).vbd.errors).toEqual(['protocol "x86_32-abi" is not x86_64-abi']);
    const c = connect({}, { "ring-page-order": "1" });
    expect(c.vbd.errors).toEqual(['ring-page-order "1" exceeds max-ring-page-order 0']);
    expect(c.vbd.state()).toBe(6);
  });
});

describe("blkback strictness", () => {
  test("a good write and read move the bytes", () => {
    const { grant, page, send, vbd } = connect();
    page(0).fill(0x5a);
    expect(send(BLKIF_OP.write, 8n, [{ gref: grant(0, true) }])).toBe(BLKIF_RSP.okay);
    expect(vbd.disk.current.subarray(8 * 512, 16 * 512).every((b) => b === 0x5a)).toBe(true);
    expect(send(BLKIF_OP.read, 8n, [{ gref: grant(1, false), first: 2, last: 3 }])).toBe(BLKIF_RSP.okay);
    expect(
      page(1)
        .subarray(1024, 2048)
        .every((b) => b === 0x5a),
    ).toBe(true);
    expect(
      page(1)
        .subarray(0, 1024)
        .every((b) => b === 0),
    ).toBe(true);
    expect(vbd.errors).toEqual([]);
  });

  const cases: [string, (c: ReturnType<typeof connect>) => number, string, DiskOptions?][] = [
    [
      "a read into a read-only grant",
      (c) => c.send(BLKIF_OP.read, 0n, [{ gref: c.grant(0, true) }]),
      "segment 0: grant ref 9 is read-only, but a read needs a writable grant",
    ],
    [
      "an unknown grant ref",
      (c) => c.send(BLKIF_OP.write, 0n, [{ gref: 777 }]),
      "segment 0: grant ref 777: unknown ref (not granted by domain 1)",
    ],
    [
      "first_sect > last_sect",
      (c) => c.send(BLKIF_OP.read, 0n, [{ gref: c.grant(0, false), first: 4, last: 3 }]),
      "segment 0: sectors 4..3 are not within one page",
    ],
    [
      "last_sect beyond the page",
      (c) => c.send(BLKIF_OP.read, 0n, [{ gref: c.grant(0, false), first: 0, last: 8 }]),
      "segment 0: sectors 0..8 are not within one page",
    ],
    ["12 segments", (c) => c.send(BLKIF_OP.read, 0n, [], { nr: 12 }), "12 segments (BLKIF_MAX_SEGMENTS_PER_REQUEST is 11)"],
    ["no segments", (c) => c.send(BLKIF_OP.read, 0n, []), "no segments"],
    [
      "a sector past the end",
      (c) => c.send(BLKIF_OP.read, 2044n, [{ gref: c.grant(0, false) }]),
      "sector 2044+8 is past the end of a 2048-sector disk",
    ],
    [
      "a sector near 2^64",
      (c) => c.send(BLKIF_OP.read, (1n << 64n) - 4n, [{ gref: c.grant(0, false) }]),
      "sector 18446744073709551612+8 is past the end of a 2048-sector disk",
    ],
    [
      "a write to a read-only disk",
      (c) => c.send(BLKIF_OP.write, 0n, [{ gref: c.grant(0, true) }]),
      "write to a read-only disk",
      { readOnly: true },
    ],
    [
      "a segment splitting a 4 KiB sector",
      (c) => c.send(BLKIF_OP.read, 0n, [{ gref: c.grant(0, false), first: 0, last: 3 }]),
      "segment 0: sectors 0..3 split a 4096-byte sector",
      { sectorSize: 4096 },
    ],
    [
      "a sector not aligned to 4 KiB sectors",
      (c) => c.send(BLKIF_OP.read, 4n, [{ gref: c.grant(0, false) }]),
      "sector 4 is not a multiple of the 4096-byte sector size",
      { sectorSize: 4096 },
    ],
    [
      "another device's handle",
      (c) => c.send(BLKIF_OP.read, 0n, [{ gref: c.grant(0, false) }], { handle: 51728 }),
      "handle 51728 is not this device (51712)",
    ],
    ["a flush with segments", (c) => c.send(BLKIF_OP.flushDiskcache, 0n, [{ gref: c.grant(0, false) }]), "a flush carries 1 segments"],
    [
      "an indirect request when none was offered",
      (c) => c.send(BLKIF_OP.indirect, 0n, [], { nr: BLKIF_OP.read, handle: 0 }) /* indirect_op, nr_segments */,
      "indirect request with 0 segments (feature-max-indirect-segments is 0)",
      { maxIndirectSegments: 0 },
    ],
  ];
  test.each(cases)("%s is answered BLKIF_RSP_ERROR and logged", (_, act, why, disk) => {
    const c = connect(disk);
    expect(act(c)).toBe(BLKIF_RSP.error);
    expect(c.vbd.errors).toHaveLength(1);
    expect(c.vbd.errors[0]).toMatch(/^request \d+ \(\w+(\/\w+)?\): /);
    expect(c.vbd.errors[0].replace(/^request \d+ \([\w/]+\): /, "")).toBe(why);
    // Nothing stays mapped after a refused request.
    expect(c.dom.gnttab.live().mappings).toBe(0);
  });

  test("discard and unknown operations are EOPNOTSUPP, and so is a barrier when not offered", () => {
    const c = connect({ barrier: false, flush: false });
    expect(c.send(BLKIF_OP.discard, 0n, [])).toBe(BLKIF_RSP.eopnotsupp);
    expect(c.send(9, 0n, [])).toBe(BLKIF_RSP.eopnotsupp);
    expect(c.send(BLKIF_OP.writeBarrier, 0n, [{ gref: c.grant(0, true) }])).toBe(BLKIF_RSP.eopnotsupp);
    expect(c.send(BLKIF_OP.flushDiskcache, 0n, [])).toBe(BLKIF_RSP.eopnotsupp);
    expect(c.vbd.errors).toEqual([]);
  });

  test("a corrupt req_prod stops the backend and is logged", () => {
    const c = connect();
    const dv = new DataView(c.dom.memory());
    dv.setUint32(RING, 1000, true);
    c.dom.evtchn.notify(Number(c.dom.xenstored.read(`${FE}/event-channel`)));
    expect(c.vbd.errors).toEqual(["req_prod 1000 is more than 32 past req_cons 0: the ring is corrupt"]);
  });
});

describe("response faults: swallowed and late answers", () => {
  /** Puts one read or write request of page 0 on the ring without waiting for an answer. */
  const post = (c: ReturnType<typeof connect>, op: number, n: number) => {
    const mem = c.dom.memory();
    const dv = new DataView(mem);
    const gref = c.grant(0, op !== BLKIF_OP.read);
    const at = RING + 64 + (n % 32) * 112;
    new Uint8Array(mem, at, 112).fill(0);
    dv.setUint8(at, op);
    dv.setUint8(at + 1, 1);
    dv.setUint16(at + 2, 51712, true);
    dv.setBigUint64(at + 8, BigInt(n), true);
    dv.setBigUint64(at + 16, 8n, true);
    dv.setUint32(at + 24, gref, true);
    dv.setUint8(at + 29, 7);
    dv.setUint32(RING, n + 1, true);
    c.dom.evtchn.notify(Number(c.dom.xenstored.read(`${FE}/event-channel`)));
    return { gref, rspProd: () => dv.getUint32(RING + 8, true) };
  };

  test("a swallowed request is executed but never answered, and its page stays mapped", () => {
    const c = connect({ faults: { swallow: [0] } });
    c.page(0).fill(0x42);
    const w = post(c, BLKIF_OP.write, 0);
    expect(w.rspProd()).toBe(0);
    expect(c.vbd.swallowed).toEqual([0n]);
    expect(c.vbd.disk.current[8 * 512]).toBe(0x42);
    expect(c.dom.gnttab.endAccess(w.gref)).toBe(-16); // -EBUSY: the backend still maps it
  });

  test("with swallowUnmapped only the answer is lost: the grant can be ended", () => {
    const c = connect({ faults: { swallow: [0], swallowUnmapped: true } });
    const w = post(c, BLKIF_OP.write, 0);
    expect(w.rspProd()).toBe(0);
    expect(c.dom.gnttab.endAccess(w.gref)).toBe(0);
  });

  test("a late read holds its page mapped until it answers, and its data lands then", async () => {
    const c = connect({ faults: { late: [0], lateMs: 5 } });
    c.vbd.disk.current.fill(0x17, 8 * 512, 16 * 512);
    const r = post(c, BLKIF_OP.read, 0);
    expect(r.rspProd()).toBe(0);
    expect(c.dom.gnttab.endAccess(r.gref)).toBe(-16);
    c.page(0).fill(0); // the guest scribbles on the page meanwhile: the late DMA overwrites it
    while (c.dom.nextTimed() !== undefined) {
      await new Promise((res) => setTimeout(res, 2));
      c.dom.service();
    }
    expect(r.rspProd()).toBe(1);
    expect(c.vbd.lateAnswered).toEqual([0n]);
    expect(c.page(0).every((b) => b === 0x17)).toBe(true);
    expect(c.dom.gnttab.endAccess(r.gref)).toBe(0);
  });
});
