// Crash consistency of SQLite on the block-device VFS: 1,000 power cuts at random
// points of a transactional workload (assembly/apps/sqlcrash), each followed by a run
// that recovers and checks the disk. Cuts land anywhere: in a transaction, in a
// commit, in the recovery of the previous cut. Half of them tear the last unflushed
// write; half let a random subset of unflushed writes reach the disk (a write cache).
// After every cut: PRAGMA integrity_check is ok, every transaction whose COMMIT
// returned is there, and the state is exactly that of k whole transactions.
// The harness's barrier is xen-blkback's (tools/harness/blkback.ts): a barrier write
// is not durable until a later flush, so a cut may drop it.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { Disk, mulberry32 } from "../../tools/harness/blkback.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

const CUTS = 1000;

const rng = mulberry32;

describe("sqlcrash: power loss at random points", () => {
  test(`${CUTS} power cuts: integrity ok, committed transactions present, no partial one`, () => {
    const wasm = wasmPath("sqlcrash");
    const disk = new Disk({ sectors: 32768 }); // 16 MiB
    const r = rng(20101);
    let committed = 0; // transactions whose COMMIT returned, over all runs
    let cuts = 0;
    let inFlightCommitted = 0; // cuts where the unacknowledged transaction turned out durable
    const kinds = { torn: 0, cache: 0, plain: 0 };
    for (let i = 0; i < CUTS; i++) {
      const torn = r() < 0.5;
      const cache = r() < 0.5;
      disk.opts.faults = { powerCutAfter: 1 + Math.floor(r() * 60), tornWrite: torn, cacheSurvivors: cache ? i + 1 : undefined };
      const run = runWasm({ wasm, cmdline: `7 1000`, disks: [disk] });
      const state = /^STATE (\d+) integrity ok$/m.exec(run.console);
      if (!state) {
        // The cut came before the check finished (during recovery): nothing to compare yet.
        if (!/power cut/.test(run.detail)) expect.fail(`run ${i}: ${run.detail}\n${run.console}`);
        if (/FAIL/.test(run.console)) expect.fail(`run ${i}: ${run.console}`);
        cuts++;
        continue;
      }
      const k = Number(state[1]);
      if (k < committed) expect.fail(`run ${i}: ${k} transactions on disk, but COMMIT had returned for ${committed} (lost a committed transaction)\n${run.console}`);
      if (k > committed + 1) expect.fail(`run ${i}: ${k} transactions on disk, but only ${committed} + 1 in flight were ever started`);
      if (k === committed + 1) inFlightCommitted++;
      committed = k;
      for (const m of run.console.matchAll(/^COMMIT (\d+)$/gm)) {
        const n = Number(m[1]);
        if (n !== committed + 1) expect.fail(`run ${i}: COMMIT ${n} after ${committed}`);
        committed = n;
      }
      if (/FAIL/.test(run.console)) expect.fail(`run ${i}: ${run.console}`);
      expect(run.detail, run.console).toMatch(/power cut/);
      cuts++;
      kinds[torn ? "torn" : cache ? "cache" : "plain"]++;
    }
    // A last clean run checks the final state and completes.
    disk.opts.faults = {};
    const end = runWasm({ wasm, cmdline: `7 3`, disks: [disk] });
    expect(end.console, end.console).toMatch(new RegExp(`^STATE (${committed}|${committed + 1}) integrity ok$`, "m"));
    expect(end.console.trimEnd().split("\n").pop()).toBe("TEST PASS");
    expect(cuts).toBe(CUTS);
    expect(disk.powerLosses).toBe(CUTS);
    // The workload made progress through the cuts, and the cuts hit every phase.
    expect(committed).toBeGreaterThan(300);
    expect(inFlightCommitted).toBeGreaterThan(0);
    console.log(`sqlcrash: ${CUTS} power cuts (${kinds.torn} torn, ${kinds.cache} write-cache, ${kinds.plain} plain), ${committed} transactions committed, ${inFlightCommitted} unacknowledged commits found durable`);
  }, 600_000); // ~2 min on a busy 2-core host: a bound against a hang, not a speed assertion
});
