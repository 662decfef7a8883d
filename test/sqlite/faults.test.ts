// SQLite on the block-device VFS against a hostile, slow disk (assembly/apps/sqlcrash
// in errors mode): I/O errors on reads and writes, delayed and reordered completions
// (requests really in flight: their data moves when they complete) and power cuts with
// torn writes and write-cache survivors. Whatever happens, every transaction whose
// COMMIT returned survives, the state is exactly that of k whole transactions, and
// PRAGMA integrity_check is ok — in the run that saw the error and at the next boot.
import { describe, expect, test } from "vitest";
import { runWasm, RunResult } from "../../tools/harness/run.ts";
import { Disk, DiskFaults, mulberry32 } from "../../tools/harness/blkback.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

const RUNS = 1000;
const last = (s: string) => s.trimEnd().split("\n").pop();

const rng = mulberry32;

/** The database extent's first sector, from the superblock (layout.ts: u64 database start block at 56). */
function dbStartSector(disk: Disk): number {
  return Number(new DataView(disk.current.buffer).getBigUint64(56, true)) * 8;
}

/**
 * Follows the runs of one disk: `committed` is the last transaction whose COMMIT
 * returned, `maxBegun` the highest one ever started. Every state the guest sees (STATE
 * at boot, RESUME after an error) lies between them; a transaction whose COMMIT failed
 * may be there or not, and counts as committed only once a later COMMIT returns.
 */
class Ledger {
  committed = 0;
  maxBegun = 0;
  /** The transaction the app runs next. */
  next = 1;
  errors = 0;
  resumes = 0;
  stops = 0;

  check(i: number, run: RunResult): "state" | "early" {
    const con = run.console;
    const where = `run ${i} (${run.detail})\n${con}`;
    if (/^FAIL/m.test(con)) expect.fail(`run ${i}: ${where}`);
    // Only the injected errors are excused: a checksum mismatch or a malformed database is damage.
    for (const m of con.matchAll(/^(ERROR \d+|STOP): (.*)$/gm))
      if (!/BLKIF_RSP_ERROR/.test(m[2])) expect.fail(`run ${i}: an error that is not an injected I/O error: ${m[0]}\n${where}`);
    const state = /^STATE (\d+) integrity ok$/m.exec(con);
    if (!state) {
      // Ended before the check finished: by a power cut, or by an I/O error it reported.
      if (/^STOP: /m.test(con)) {
        expect(last(con), where).toBe("TEST PASS: stopped by an I/O error");
        this.stops++;
      } else if (!/power cut/.test(run.detail)) expect.fail(`run ${i} ended without its check: ${where}`);
      return "early";
    }
    this.see(Number(state[1]), "STATE", where);
    for (const m of con.matchAll(/^(COMMIT|ERROR|RESUME) (\d+)/gm)) {
      const n = Number(m[2]);
      if (m[1] === "RESUME") {
        this.see(n, "RESUME", where);
        this.resumes++;
        continue;
      }
      if (n !== this.next) expect.fail(`${m[1]} ${n}, but transaction ${this.next} was the one running: ${where}`);
      if (m[1] === "ERROR") this.errors++;
      else {
        this.committed = n;
        this.next = n + 1;
        this.maxBegun = Math.max(this.maxBegun, this.next);
      }
    }
    if (/^STOP: /m.test(con)) this.stops++;
    else if (!/power cut/.test(run.detail)) expect(last(con), where).toBe("TEST PASS");
    return "state";
  }

  // A state the guest saw: no acknowledged transaction lost, none that never began.
  private see(k: number, what: string, where: string): void {
    if (k < this.committed) expect.fail(`${what} ${k}: COMMIT had returned for ${this.committed} (a committed transaction was lost): ${where}`);
    if (k > this.maxBegun) expect.fail(`${what} ${k}: only ${this.maxBegun} transactions were ever begun: ${where}`);
    this.next = k + 1;
    this.maxBegun = Math.max(this.maxBegun, this.next);
  }
}

describe("sqlcrash: I/O errors on a slow disk", () => {
  test("a slow backend fails one write of a large transaction: the commit fails, the next boot has every committed row", () => {
    const wasm = wasmPath("sqlcrash");
    const disk = new Disk({ sectors: 32768 }); // 16 MiB
    const first = runWasm({ wasm, cmdline: "7 12 big", disks: [disk] });
    expect(last(first.console), first.console).toBe("TEST PASS");
    // The next write of a database page fails (once), fast, while the other writes of the
    // transaction are in flight and some straggle for a second; a write's data may leave its
    // page when it is dispatched and land when it completes.
    const s = dbStartSector(disk);
    const slow: DiskFaults = { delayMs: 2, reorder: 1, stragglers: { share: 0.1, ms: 1000 }, ioErrors: [{ sector: s, count: 8 * 1000, op: "write", times: 1 }] };
    disk.opts.faults = slow;
    const bad = runWasm({ wasm, cmdline: "7 1 errors,big", disks: [disk] });
    const vbd = bad.domain.vbds[0];
    expect(vbd.log.filter((e) => e.status !== 0).map((e) => e.op)).toEqual(["write"]);
    // It was one of many writes of one write-back in flight together.
    expect(vbd.maxOutstanding).toBeGreaterThan(8);
    expect(bad.console).toMatch(/^ERROR 13: COMMIT 13: .*disk I\/O error.*BLKIF_RSP_ERROR/m);
    expect(bad.console).toMatch(/^RESUME 12$/m);
    expect(last(bad.console), bad.console).toBe("TEST PASS");
    // The next boot: integrity ok, all 12 committed transactions there, and it goes on.
    disk.opts.faults = {};
    const next = runWasm({ wasm, cmdline: "7 2 big", disks: [disk] });
    expect(next.console, next.console).toMatch(/^STATE 12 integrity ok\nCOMMIT 13\nCOMMIT 14\nTEST PASS$/m);
  }, 120_000);

  test.each([
    ["block checksums (layout 2, the default)", RUNS, ""],
    ["no block checksums (layout 1)", 200, ",plain"],
  ])("%s: %i seeded runs mixing read and write errors, slow reordered completions and power cuts", (_what, runs, mode) => {
    const wasm = wasmPath("sqlcrash");
    const disk = new Disk({ sectors: 32768 });
    const r = rng(12012 + runs);
    const ledger = new Ledger();
    const t0 = performance.now();
    const kinds = { errors: 0, slow: 0, cuts: 0, torn: 0, cache: 0, early: 0 };
    let dbStart = 0;
    for (let i = 0; i < runs; i++) {
      const faults: DiskFaults = {};
      const slow = r() < 0.2;
      if (slow) {
        faults.delayMs = 1;
        faults.reorder = i + 1;
        kinds.slow++;
      }
      if (dbStart > 0 && r() < 0.6) {
        // One to three transient errors where the workload reads and writes: superblocks, journal, database.
        faults.ioErrors = [];
        for (let e = 1 + Math.floor(r() * 3); e > 0; e--) {
          const area = r();
          const sector = area < 0.1 ? Math.floor(r() * 16) : area < 0.4 ? 16 + Math.floor(r() * 600) : dbStart + Math.floor(r() * 3000);
          faults.ioErrors.push({ sector, count: 8, op: r() < 0.5 ? "read" : "write", times: 1 + Math.floor(r() * 3) });
        }
        kinds.errors++;
      }
      if (r() < 0.5) {
        const torn = r() < 0.5;
        const cache = r() < 0.5;
        faults.powerCutAfter = 1 + Math.floor(r() * 60);
        faults.tornWrite = torn;
        if (cache) faults.cacheSurvivors = i + 1;
        kinds.cuts++;
        if (torn) kinds.torn++;
        if (cache) kinds.cache++;
      }
      disk.opts.faults = faults;
      // A slow run costs ~1 ms a request (its boot reads the whole database): fewer transactions.
      const run = runWasm({ wasm, cmdline: `11 ${slow ? 3 : 6} errors${mode}`, disks: [disk] });
      if (ledger.check(i, run) === "early") kinds.early++;
      if (dbStart === 0 && ledger.committed > 0) dbStart = dbStartSector(disk);
    }
    // A last clean run checks the final state and completes.
    disk.opts.faults = {};
    const end = runWasm({ wasm, cmdline: `11 3 errors${mode}`, disks: [disk] });
    ledger.check(runs, end);
    expect(last(end.console)).toBe("TEST PASS");
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    // The mix really happened: errors reported and recovered from in the run, power cuts, progress.
    expect(ledger.errors).toBeGreaterThan(runs / 20);
    expect(ledger.resumes).toBeGreaterThan(runs / 50);
    expect(disk.powerLosses).toBeGreaterThan(runs / 10);
    expect(ledger.committed).toBeGreaterThan(runs / 2);
    console.log(
      `sqlcrash errors${mode}: ${runs} runs in ${s} s (${kinds.errors} with I/O errors, ${kinds.slow} slow and reordered, ${disk.powerLosses} power cuts of ${kinds.cuts} set: ${kinds.torn} torn, ${kinds.cache} write-cache), ` +
        `${ledger.errors} failed transactions, ${ledger.resumes} recovered in-run, ${ledger.stops} runs stopped by an I/O error, ${kinds.early} ended before their check, ${ledger.committed} transactions committed`,
    );
  }, 600_000); // ~1 min; a bound against a hang, not a speed assertion
});
