// Durability through the harness blkback: blkcheck writes a pattern in one
// guest and verifies it in a second on the same disk (file-backed, checked on
// the host too); power loss drops every write no flush or barrier pre-flush covered,
// optionally tearing one multi-sector write. The barrier is Linux xen-blkback's
// (drivers/block/xen-blkback/blkback.c): drain, then REQ_PREFLUSH before its own write,
// so the writes before a barrier are durable once it runs, but the barrier write itself
// is not until a later flush: these tests once expected it durable, as no real Xen gives.
import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runWasm } from "../../tools/harness/run.ts";
import { Disk } from "../../tools/harness/blkback.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import { holds, zero } from "../../tools/harness/pattern.ts";

const run = (app: string, cmdline: string, disk: Disk) => runWasm({ wasm: wasmPath(app), cmdline, disks: [disk] });
const last = (s: string) => s.trimEnd().split("\n").pop();

describe("blkcheck: write in one guest, read back in another", () => {
  test("a file-backed disk: the second guest and the host both see the pattern", () => {
    const dir = mkdtempSync(join(tmpdir(), "blkcheck-"));
    try {
      const file = join(dir, "disk.img");
      writeFileSync(file, new Uint8Array(4 << 20));
      const w = run("blkcheck", "write 1234", new Disk({ file }));
      expect(w.console.split("\n")[0]).toBe(
        "blkcheck: vbd 51712: 8192 sectors of 512 bytes, flush, barrier, 256 pages per request, 32 ring slots",
      );
      expect(last(w.console)).toBe("TEST PASS: wrote and flushed 8192 sectors, seed 1234");
      expect(w.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
      expect(w.domain.vbds[0].state()).toBe(6);
      // The host reads the file: the flush wrote it back.
      expect(holds(readFileSync(file), 1234, 0, 4 << 20)).toBe(true);
      expect(last(run("blkcheck", "verify 1234", new Disk({ file })).console)).toBe("TEST PASS: verified 8192 sectors, seed 1234");
      expect(last(run("blkcheck", "verify 1235", new Disk({ file })).console)).toBe(
        "FAIL: byte 0 (sector 0) differs from the pattern of seed 1235",
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("a 4 KiB-sector disk, and a disk with an odd number of sectors", () => {
    const d4 = new Disk({ sectors: 2048, sectorSize: 4096 }); // 1 MiB: 256 sectors of 4 KiB
    expect(last(run("blkcheck", "write 77", d4).console)).toBe("TEST PASS: wrote and flushed 256 sectors, seed 77");
    expect(last(run("blkcheck", "verify 77", d4).console)).toBe("TEST PASS: verified 256 sectors, seed 77");
    const odd = new Disk({ sectors: 1001 });
    expect(last(run("blkcheck", "write 3", odd).console)).toBe("TEST PASS: wrote and flushed 1001 sectors, seed 3");
    expect(holds(odd.durable, 3, 0, 1001 * 512)).toBe(true);
  });

  test("a backend that unmaps the ring late (Linux does it only at our Closed): the disconnect waits for it", () => {
    const d = new Disk({ sectors: 256, faults: { unmapDelayMs: 50 } });
    const r = run("blkcheck", "write 8", d);
    expect(last(r.console)).toBe("TEST PASS: wrote and flushed 256 sectors, seed 8");
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
    expect(r.ms).toBeGreaterThanOrEqual(50);
  });

  test("a corrupted sector on the host is found by the verifier", () => {
    const d = new Disk({ sectors: 2048 });
    run("blkcheck", "write 5", d);
    d.current[1500 * 512 + 17] ^= 1;
    expect(last(run("blkcheck", "verify 5", d).console)).toBe("FAIL: byte 768016 (sector 1500) differs from the pattern of seed 5");
  });
});

describe("power loss", () => {
  // blktest powerloss writes (8-page regions, 512-byte sectors): region 1 [0,64) + flush,
  // region 2 [64,128) unflushed, region 3 [128,136) as a barrier, region 4 [136,200) unflushed.
  const S = 512;

  test("after the run: flushed and barrier-covered writes survive, the barrier write itself and the rest are gone", () => {
    const d = new Disk({ sectors: 2048 });
    const r = run("blktest", "powerloss 21", d);
    expect(last(r.console)).toBe("TEST PASS");
    expect(holds(d.current, 21, 0, 200 * S)).toBe(true); // before the power loss, reads see everything
    d.powerLoss();
    // The barrier's pre-flush made region 2 durable; its own write (region 3) was never flushed.
    expect(holds(d.durable, 21, 0, 128 * S)).toBe(true);
    expect(zero(d.durable, 128 * S, 72 * S)).toBe(true);
    // A second guest sees what survived.
    expect(last(run("blkcheck", "verify 21 128", d).console)).toBe("TEST PASS: verified 128 sectors, seed 21");
    expect(last(run("blkcheck", "verify 21 129", d).console)).toBe("FAIL: byte 65536 (sector 128) differs from the pattern of seed 21");
  });

  test("a later flush makes the barrier write durable", () => {
    const d = new Disk({ sectors: 2048 });
    run("blktest", "powerloss 25", d);
    expect(run("blktest", "flush", d).console.split("\n")[0]).toBe("flush: ok");
    d.powerLoss();
    expect(holds(d.durable, 25, 0, 200 * S)).toBe(true);
  });

  test("a torn write: the last unflushed multi-sector write lands half-way", () => {
    const d = new Disk({ sectors: 2048 });
    run("blktest", "powerloss 22", d);
    d.powerLoss(true);
    expect(holds(d.durable, 22, 0, 128 * S)).toBe(true);
    expect(zero(d.durable, 128 * S, 8 * S)).toBe(true); // the barrier write: not flushed
    expect(holds(d.durable, 22, 136 * S, 32 * S)).toBe(true); // half of region 4
    expect(zero(d.durable, 168 * S, 32 * S)).toBe(true);
  });

  test.each([
    [2, 64], // cut right after the flush: region 1 only
    [3, 64], // region 2 executed, never flushed: lost
    [4, 128], // the barrier ran: its pre-flush kept region 2, its own write (region 3) is lost
    [5, 128], // region 4 executed, never flushed: lost
  ])("a power cut after %i write/flush/barrier requests leaves %i sectors", (after, sectors) => {
    const d = new Disk({ sectors: 2048, faults: { powerCutAfter: after } });
    const r = run("blktest", "powerloss 23", d);
    expect(r.detail).toBe(`power cut: power cut after ${after} write, flush or barrier requests (disk fault injection)`);
    expect(r.console).toContain("POWER CUT: ");
    expect(holds(d.durable, 23, 0, sectors * S)).toBe(true);
    expect(zero(d.durable, sectors * S, (200 - sectors) * S)).toBe(true);
    expect(Buffer.from(d.current).equals(Buffer.from(d.durable))).toBe(true); // reads now see only what survived
  });

  test("a power cut with a torn write mid-run", () => {
    const d = new Disk({ sectors: 2048, faults: { powerCutAfter: 5, tornWrite: true } });
    run("blktest", "powerloss 24", d);
    expect(holds(d.durable, 24, 0, 128 * S)).toBe(true);
    expect(zero(d.durable, 128 * S, 8 * S)).toBe(true);
    expect(holds(d.durable, 24, 136 * S, 32 * S)).toBe(true);
    expect(zero(d.durable, 168 * S, 32 * S)).toBe(true);
  });
});
