// The block stack in the guest (runtime/block) against the harness's blkback:
// negotiation, Solo5 test_blk's edge cases, many requests in flight, indirect
// descriptors, barriers, backend errors, and a backend or xenstore that lies.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { BLKIF_OP, DiskOptions } from "../../tools/harness/blkback.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

const blktest = (cmdline: string, disk: DiskOptions = {}) => {
  const r = runWasm({ wasm: wasmPath("blktest"), cmdline, disks: [disk] });
  const lines = r.console.trimEnd().split("\n");
  return { r, lines, vbd: r.domain.vbds[0], result: lines[lines.length - 1], failures: lines.filter((l) => l.startsWith("not ok")) };
};

describe("negotiation (io/blkif.h feature keys)", () => {
  test("a default disk: sectors, sector size, flush, barrier, indirect segments, one-page ring", () => {
    const { r, lines, vbd, result } = blktest("info", { sectors: 4096 });
    expect(lines[0]).toBe(
      "info: sectors=4096 sector-size=512 physical=512 ro=0 flush=1 barrier=1 max-pages=256 indirect=256 ring=32 ring-order=0/0 backend=/local/domain/0/backend/vbd/1/51712",
    );
    expect(result).toBe("TEST PASS");
    const fe = "/local/domain/1/device/vbd/51712";
    const xs = r.domain.xenstored;
    expect(xs.read(`${fe}/protocol`)).toBe("x86_64-abi");
    expect(xs.read(`${fe}/ring-ref`)).toMatch(/^\d+$/);
    expect(xs.read(`${fe}/event-channel`)).toMatch(/^\d+$/);
    expect(xs.read(`${fe}/state`)).toBe("4");
    expect(vbd.state()).toBe(4);
    expect(vbd.errors).toEqual([]);
  });

  test("a 4 KiB-sector, read-only disk without flush, barrier or indirect descriptors, offering 4 ring pages", () => {
    const { lines, r } = blktest("info", {
      sectors: 1024,
      sectorSize: 4096,
      readOnly: true,
      flush: false,
      barrier: false,
      maxIndirectSegments: 0,
      maxRingPageOrder: 2,
    });
    expect(lines[0]).toMatch(
      /^info: sectors=128 sector-size=4096 physical=4096 ro=1 flush=0 barrier=0 max-pages=11 indirect=0 ring=128 ring-order=2\/2 /,
    );
    // A multi-page ring is published as ring-page-order and ring-ref0..3, without ring-ref.
    const xs = r.domain.xenstored;
    const fe = "/local/domain/1/device/vbd/51712";
    expect(xs.read(`${fe}/ring-page-order`)).toBe("2");
    expect([0, 1, 2, 3].map((i) => xs.read(`${fe}/ring-ref${i}`))).toEqual(["8", "9", "10", "11"]);
    expect(xs.read(`${fe}/ring-ref`)).toBeUndefined();
    expect(r.domain.vbds[0].ringPageOrder).toBe(2);
  });

  test("ring order: ours is at most 2 (4 pages), less when the backend offers less", () => {
    expect(blktest("info", { maxRingPageOrder: 4 }).lines[0]).toMatch(/ ring=128 ring-order=2\/4 /);
    expect(blktest("info", { maxRingPageOrder: 1 }).lines[0]).toMatch(/ ring=64 ring-order=1\/1 /);
  });

  test("a backend whose max-ring-page-order shrinks before InitWait is refused", () => {
    let reads = 0;
    const r = runWasm({
      wasm: wasmPath("blktest"),
      cmdline: "info",
      disks: [{ maxRingPageOrder: 2 }],
      setup: (dom) =>
        void (dom.xenstored.hooks.beforeRequest = (req, xs) => {
          if (Buffer.from(req.payload).toString("latin1").includes("max-ring-page-order") && reads++ === 1)
            xs.write("/local/domain/0/backend/vbd/1/51712/max-ring-page-order", "1");
        }),
    });
    expect(r.console).toContain('open: vbd 51712: backend key max-ring-page-order = "1" is below the order 2 it offered before InitWait');
    expect(r.domain.vbds[0].state()).toBe(6);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("an indirect offer below 11 segments is not used; above 256 is clamped to 256", () => {
    expect(blktest("info", { maxIndirectSegments: 8 }).lines[0]).toMatch(/ max-pages=11 indirect=0 /);
    expect(blktest("info", { maxIndirectSegments: 4096 }).lines[0]).toMatch(/ max-pages=256 indirect=256 /);
  });

  test.each([
    [{ sectors: "12ab" }, 'vbd 51712: backend key sectors = "12ab" is not a number'],
    [{ sectors: "-1" }, 'vbd 51712: backend key sectors = "-1" is not a number'],
    [{ sectors: "99999999999999999999999" }, 'vbd 51712: backend key sectors = "99999999999999999999999" is not a number'],
    [{ sectors: "36028797018963968" }, 'vbd 51712: backend key sectors = "36028797018963968" overflows a 64-bit byte count'],
    [{ sectors: undefined }, "vbd 51712: the backend wrote no sectors key (blkif.h requires it)"],
    [{ "sector-size": "1000" }, 'vbd 51712: backend key sector-size = "1000" is not a power of two from 512 to 4096'],
    [{ "sector-size": "8192" }, 'vbd 51712: backend key sector-size = "8192" is not a power of two from 512 to 4096'],
    [{ info: "4x" }, 'vbd 51712: backend key info = "4x" is not a 32-bit number'],
    [{ "feature-barrier": "2" }, 'vbd 51712: backend key feature-barrier = "2" is neither 0 nor 1'],
    [{ "feature-flush-cache": "yes" }, 'vbd 51712: backend key feature-flush-cache = "yes" is neither 0 nor 1'],
    [{ "physical-sector-size": "256" }, 'vbd 51712: backend key physical-sector-size = "256" is not a power of two ≥ sector-size'],
    [
      { "sector-size": "4096", "physical-sector-size": "1024" },
      'vbd 51712: backend key physical-sector-size = "1024" is not a power of two ≥ sector-size',
    ],
    [{ sectors: "36028797018963968", info: "4x" }, 'vbd 51712: backend key sectors = "36028797018963968" overflows a 64-bit byte count'],
  ])("hostile backend key %j: a clear error, and the device is closed again", (keys, msg) => {
    const { lines, vbd } = blktest("info", { keys });
    expect(lines).toEqual([`open: ${msg}`, "FAIL: no checks ran"]);
    expect(vbd.state()).toBe(6); // the frontend abandoned the device (Closing → Closed)
  });

  test("hostile offers before InitWait: indirect segments and ring order", () => {
    const r1 = runWasm({
      wasm: wasmPath("blktest"),
      cmdline: "info",
      disks: [{}],
      setup: (dom) => dom.xenstored.write("/local/domain/0/backend/vbd/1/51712/feature-max-indirect-segments", "lots"),
    });
    expect(r1.console).toContain('open: vbd 51712: backend key feature-max-indirect-segments = "lots" is not a number');
    const r2 = runWasm({
      wasm: wasmPath("blktest"),
      cmdline: "info",
      disks: [{}],
      setup: (dom) => dom.xenstored.write("/local/domain/0/backend/vbd/1/51712/max-ring-page-order", "40"),
    });
    expect(r2.console).toContain('open: vbd 51712: backend key max-ring-page-order = "40" is not a ring order (0..16)');
  });

  test("no disk: a clear error naming the xl config line", () => {
    const r = runWasm({ wasm: wasmPath("blktest"), cmdline: "info" });
    expect(r.console).toBe("open: block: no virtual disk — is there a disk line in the xl config?\nFAIL: no checks ran\n");
  });
});

describe("Solo5 test_blk's edge cases", () => {
  test.each([512, 4096])("sector size %i: last sector, past the end, short, misaligned and oversized buffers", (sectorSize) => {
    const { lines, result, failures, vbd, r } = blktest("edges", { sectors: 2048, sectorSize });
    expect(failures).toEqual([]);
    expect(result).toBe("TEST PASS");
    expect(lines.filter((l) => l.startsWith("ok ")).length).toBe(16);
    // Refusals happen in the frontend: the backend saw only well-formed requests.
    expect(vbd.errors).toEqual([]);
    // The orderly disconnect: backend Closed, every grant ended, nothing mapped.
    expect(vbd.state()).toBe(6);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("on a read-only disk: reads work, writes are refused by the frontend", () => {
    const { result, failures } = blktest("edges", { readOnly: true });
    expect(failures).toEqual([]);
    expect(result).toBe("TEST PASS");
    const w = blktest("write 0 8", { readOnly: true });
    expect(w.lines.slice(0, 2)).toEqual(["write 1: vbd 51712: write to a read-only disk", "write 2: vbd 51712: write to a read-only disk"]);
    expect(w.vbd.requests).toBe(0);
  });
});

describe("many requests in flight", () => {
  test("random writes and reads, 48 at a time, checked against a model: the ring fills", () => {
    const { lines, result, vbd, r } = blktest("random 7 8 48", { sectors: 4096 });
    expect(result).toBe("TEST PASS");
    expect(lines).toContain("random: " + lines.find((l) => l.startsWith("random: "))!.slice(8));
    expect(vbd.maxOutstanding).toBe(32); // every slot of the one-page ring was in use at once
    expect(vbd.errors).toEqual([]);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("a 4-page ring: 128 requests in flight", () => {
    const { result, vbd, r } = blktest("random 3 4 200", { sectors: 8192, maxRingPageOrder: 2 });
    expect(result).toBe("TEST PASS");
    expect(vbd.maxOutstanding).toBe(128);
    expect(vbd.errors).toEqual([]);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("with delayed, out-of-order completions", () => {
    const { result, vbd } = blktest("random 11 6 40", { sectors: 4096, faults: { delayMs: 1, reorder: 3 } });
    expect(result).toBe("TEST PASS");
    expect(vbd.maxOutstanding).toBe(32);
    // Completions really came back out of ring order.
    const ids = vbd.log.map((e) => Number(e.id));
    expect(ids.some((id, i) => i > 0 && id < ids[i - 1])).toBe(true);
  });

  test("on a 4 KiB-sector disk without indirect descriptors", () => {
    const { result } = blktest("random 5 4 40", { sectors: 2048, sectorSize: 4096, maxIndirectSegments: 0 });
    expect(result).toBe("TEST PASS");
  });
});

describe("indirect descriptors", () => {
  test("a 64-page request goes as one BLKIF_OP_INDIRECT", () => {
    const { result, vbd } = blktest("indirect");
    expect(result).toBe("TEST PASS");
    expect(vbd.log.map((e) => [e.op, e.nsec])).toEqual([
      ["write", 512],
      ["read", 512],
    ]);
    expect(vbd.requests).toBe(2);
  });

  test("without the offer, requests stay at 11 segments", () => {
    const { result, vbd } = blktest("indirect", { maxIndirectSegments: 0 });
    expect(result).toBe("TEST PASS");
    expect(vbd.log.map((e) => e.nsec)).toEqual([88, 88]);
  });
});

describe("write barriers", () => {
  test("write A, barrier, write C to the same sectors, all in flight: the backend runs them in that order and C wins", () => {
    for (const reorder of [1, 2, 3, 4]) {
      const { result, vbd, failures } = blktest("barrier 9", { faults: { reorder, delayMs: 1 } });
      expect(failures).toEqual([]);
      expect(result).toBe("TEST PASS");
      // A completes before the barrier runs (it drains); C, dispatched after the barrier, may
      // complete before the barrier's own write, as with xen-blkback (blkback.c).
      const ops = vbd.log.map((e) => [e.op, Number(e.id)]);
      expect(ops[0]).toEqual(["write", 0]);
      expect(ops.slice(1, 3).sort()).toEqual([
        ["barrier", 1],
        ["write", 2],
      ]);
    }
  });

  test("the barrier is refused by the frontend when not offered, and by the backend's EOPNOTSUPP when it refuses", () => {
    expect(blktest("barrier-op", { barrier: false }).lines[0]).toBe(
      "barrier: vbd 51712: the backend offers no write barriers (feature-barrier)",
    );
    expect(blktest("barrier-op", { faults: { refuseOps: [BLKIF_OP.writeBarrier] } }).lines[0]).toBe(
      "barrier: vbd 51712: barrier write of sector 0+8: the backend does not support this operation (BLKIF_RSP_EOPNOTSUPP)",
    );
  });

  test("flush: a cache flush, an empty barrier when only barriers are offered, else a clear error", () => {
    const f = blktest("flush");
    expect(f.lines[0]).toBe("flush: ok");
    expect(f.vbd.log.map((e) => e.op)).toEqual(["flush"]);
    const b = blktest("flush", { flush: false });
    expect(b.lines[0]).toBe("flush: ok");
    expect(b.vbd.log.map((e) => [e.op, e.nsec])).toEqual([["barrier", 0]]);
    expect(blktest("flush", { flush: false, barrier: false }).lines[0]).toBe(
      "flush: vbd 51712: the backend offers neither feature-flush-cache nor feature-barrier: writes cannot be made durable",
    );
    expect(blktest("flush", { faults: { refuseOps: [BLKIF_OP.flushDiskcache] } }).lines[0]).toBe(
      "flush: vbd 51712: flush: the backend does not support this operation (BLKIF_RSP_EOPNOTSUPP)",
    );
  });
});

describe("backend errors", () => {
  test("an I/O error on a chosen sector fails the requests that touch it, and only those", () => {
    const bad = blktest("read 100 8", { faults: { ioErrors: [{ sector: 107 }] } });
    expect(bad.lines.slice(0, 2)).toEqual([
      "read 1: vbd 51712: read of sector 100+8: the backend reported an I/O error (BLKIF_RSP_ERROR)",
      "read 2: vbd 51712: read of sector 100+8: the backend reported an I/O error (BLKIF_RSP_ERROR)",
    ]);
    expect(blktest("read 108 8", { faults: { ioErrors: [{ sector: 107 }] } }).lines[0]).toBe("read 1: ok");
    expect(blktest("read 100 8", { faults: { ioErrors: [{ sector: 107, op: "write" }] } }).lines[0]).toBe("read 1: ok");
    expect(blktest("write 100 8", { faults: { ioErrors: [{ sector: 107, op: "write" }] } }).lines[0]).toBe(
      "write 1: vbd 51712: write of sector 100+8: the backend reported an I/O error (BLKIF_RSP_ERROR)",
    );
  });

  const hostile: [string, (rsp: { id: bigint; op: number; status: number }) => void, string][] = [
    ["an id beyond the ring", (r) => void (r.id = 1n << 40n), "response id 1099511627776 is out of range (the ring has 32 slots)"],
    ["an id not in flight", (r) => void (r.id = 5n), "response id 5 names no request in flight"],
    ["another operation", (r) => void (r.op = BLKIF_OP.write), "response id 0 is for a write, but the request was a read"],
  ];
  test.each(hostile)("a response with %s stops the device with a clear error, no trap", (_, mangle, why) => {
    const { lines, r } = blktest("read 0 8", { faults: { mangle } });
    expect(lines.slice(0, 2)).toEqual([`read 1: vbd 51712: ${why}`, `read 2: vbd 51712: ${why}`]);
    expect(r.outcome).toBe("poweroff");
  });

  test("an unknown status is an error naming it; the device goes on", () => {
    const { lines } = blktest("read 0 8", { faults: { mangle: (r, n) => void (n === 0 && (r.status = 7)) } });
    expect(lines.slice(0, 2)).toEqual([
      "read 1: vbd 51712: read of sector 0+8: the backend answered with an unknown status 7",
      "read 2: ok",
    ]);
  });
});

describe("deadlines: a backend that does not answer", () => {
  // stall: write 0+8 (answer 0), then read 0+8, write 2064+16, read 64+8 in flight together (answers 1, 2, 3).
  const stall = (cmd: string, faults: DiskOptions["faults"]) => blktest(`stall ${cmd}`, { sectors: 4096, faults });
  const lost = (what: string, deadline: string) => `vbd 51712: ${what}: no response from the backend in ${deadline}`;

  test("a swallowed answer fails the request with the exact error, then the device; no hang", () => {
    const { lines, result, vbd, r } = stall("1000 100 0", { swallow: [2], swallowUnmapped: true });
    const err = lost("write of sector 2064+16", "1 s");
    expect(lines).toEqual([
      "write 0+8: ok",
      "read of sector 0+8: ok shared=0",
      `write of sector 2064+16: ${err} shared=0`,
      "read of sector 64+8: ok shared=0",
      "kept 0 pages, given up 0",
      `later write 0+8: ${err}`, // the device failed: refused at once, never on the ring
      "reused 4 pages: intact",
      "close: ok",
      "ok 1 ran",
      "TEST PASS",
    ]);
    expect(r.outcome).toBe("poweroff");
    expect(vbd.swallowed).toEqual([1n]); // the write's id (its ring slot), lost in the backend
    expect(vbd.log.filter((e) => e.op === "write").map((e) => e.sector)).toEqual([0, 2064]);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("answers within the deadline: nothing fails, and the timers do not keep the guest alive", () => {
    const { lines, result } = stall("300 100 0", { delayMs: 20, reorder: 5 });
    expect(lines.slice(0, 7)).toEqual([
      "write 0+8: ok",
      "read of sector 0+8: ok shared=0",
      "write of sector 2064+16: ok shared=0",
      "read of sector 64+8: ok shared=0",
      "kept 0 pages, given up 0",
      "later write 0+8: ok",
      "reused 4 pages: intact",
    ]);
    expect(result).toBe("TEST PASS");
  });

  test("a request the backend swallows and keeps mapped: its pages are given up, never reused", () => {
    const { lines, vbd, r } = stall("200 100 0", { swallow: [2] });
    const err = lost("write of sector 2064+16", "200 ms");
    expect(lines.slice(0, 7)).toEqual([
      "write 0+8: ok",
      "read of sector 0+8: ok shared=0",
      `write of sector 2064+16: ${err} shared=1`,
      "read of sector 64+8: ok shared=0",
      "kept 2 pages, given up 2",
      `later write 0+8: ${err}`,
      "reused 2 pages: intact",
    ]);
    expect(lines.slice(7)).toEqual(["close: ok", "ok 1 ran", "TEST PASS"]);
    // The two data pages stay granted: the backend still maps them.
    expect(r.domain.gnttab.live()).toEqual({ grants: 2, mappings: 0 });
    expect(vbd.errors).toEqual([]);
  });

  test("late answers after the deadline: ignored, no trap, and the pages they land in were not reused", () => {
    const { lines, vbd, r } = stall("200 100 1200", { late: [1, 2], lateMs: 800 });
    const err = lost("read of sector 0+8", "200 ms");
    expect(lines).toEqual([
      "write 0+8: ok",
      `read of sector 0+8: ${err} shared=1`,
      `write of sector 2064+16: ${err} shared=1`,
      "read of sector 64+8: ok shared=0",
      "kept 3 pages, given up 3",
      `later write 0+8: ${err}`,
      "reused 1 pages: intact",
      "close: ok",
      "ok 1 ran",
      "TEST PASS",
    ]);
    // Both late answers really came, while the guest still ran (the settle wait), after the deadline had failed the device.
    expect(vbd.lateAnswered).toEqual([0n, 1n]);
    expect(r.outcome).toBe("poweroff");
    expect(vbd.errors).toEqual([]);
    // The later write never reached the backend.
    expect(vbd.log.filter((e) => e.op === "write").map((e) => e.sector)).toEqual([0, 2064]);
  });

  test("the check can fail: a caller that reuses shared pages sees the late read land in them", () => {
    const { lines } = stall("200 100 1200 1", { late: [1, 2], lateMs: 800 });
    expect(lines[4]).toBe("kept 0 pages, given up 3");
    expect(lines[6]).toBe("reused 4 pages: 1 overwritten");
  });

  test("a protocol violation while the backend still maps a read's page: that page is kept until it lets go", () => {
    // Answer 1 (the write's, as the read 0+8 is late) names no request in flight; the late read DMAs into its page later.
    const faults = { late: [1], lateMs: 800, mangle: (rsp: { id: bigint }, n: number) => void (n === 1 && (rsp.id = 9n)) };
    const { lines, vbd } = stall("30000 100 1200", faults);
    const err = "vbd 51712: response id 9 names no request in flight";
    expect(lines.slice(0, 8)).toEqual([
      "write 0+8: ok",
      `read of sector 0+8: ${err} shared=1`,
      `write of sector 2064+16: ${err} shared=0`,
      `read of sector 64+8: ${err} shared=0`,
      "kept 1 pages, given up 1",
      `later write 0+8: ${err}`,
      "reused 3 pages: intact",
      "close: ok",
    ]);
    expect(vbd.lateAnswered).toEqual([0n]);
    // Ignoring `shared` would have handed the read's page out again, and the late DMA would land in it.
    expect(stall("30000 100 1200 1", faults).lines[6]).toBe("reused 4 pages: 1 overwritten");
  });

  test("after a failure the device waits for the backend to unmap: a late unmap returns the pages", () => {
    const { lines, vbd, r } = stall("200 3000 0", { late: [1], lateMs: 400 });
    expect(lines.slice(0, 5)).toEqual([
      "write 0+8: ok",
      `read of sector 0+8: ${lost("read of sector 0+8", "200 ms")} shared=0`,
      "write of sector 2064+16: ok shared=0",
      "read of sector 64+8: ok shared=0",
      "kept 0 pages, given up 0",
    ]);
    expect(vbd.lateAnswered).toEqual([0n]);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });
});
