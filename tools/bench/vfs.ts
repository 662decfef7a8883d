// The cost of the SQLite VFS's block checksums (layout version 2, blocksum.ts), in the
// harness: the same sqlvfs workload on a disk formatted with checksums and on one
// formatted without (layout version 1), in the same run, printed side by side.
//   - commits: each an INSERT or an UPDATE of a 200-byte row in its own transaction;
//     time per commit and requests per commit (writes, flushes, barriers, reads)
//   - a cold read of every row by a fresh guest (every page read is verified)
import { runWasm } from "../harness/run.ts";
import { Disk } from "../harness/blkback.ts";
import { benchFigures, Row } from "./table.ts";

export interface VfsBenchOptions {
  /** INSERT + UPDATE iterations (2n - 1 commits). */
  iterations?: number;
  rowBytes?: number;
}

/** Runs the workload with and without checksums; returns the report rows. */
export function vfsChecksumRows(wasm: string, o: VfsBenchOptions = {}): Row[] {
  const n = o.iterations ?? 300;
  const size = o.rowBytes ?? 200;
  const figures = (plain: boolean) => {
    const disk = new Disk({ sectors: 65536 }); // 32 MiB
    const pre = plain ? "plain " : "";
    const w = runWasm({ wasm, name: "sqlvfs", cmdline: `${pre}commits ${n} ${size}`, disks: [disk] });
    if (!/^TEST PASS$/m.test(w.console)) throw new Error(`sqlvfs ${pre}commits failed:\n${w.console}`);
    const r = runWasm({ wasm, name: "sqlvfs", cmdline: "read", disks: [disk] });
    if (!/^TEST PASS$/m.test(r.console)) throw new Error(`sqlvfs read (${plain ? "no checksums" : "checksums"}) failed:\n${r.console}`);
    return new Map([...benchFigures(w.console), ...benchFigures(r.console)]);
  };
  // Alternate, twice each, so drift in host load hits both alike; keep the faster time.
  const runs = [figures(false), figures(true), figures(false), figures(true)];
  const best = (plain: boolean, k: string) => Math.min(...runs.filter((_, i) => (i % 2 === 1) === plain).map((f) => f.get(k) ?? NaN));
  const against = "same workload, disk without checksums (layout v1), same run";
  const row = (metric: string, k: string, unit: string): Row => ({
    metric,
    morgana: best(false, k),
    baseline: best(true, k),
    against,
    unit,
    lowerIsBetter: true,
  });
  return [
    row(`SQLite commit (${size} B row, insert or update), with checksums`, "commit_us", "µs"),
    row("  write requests per commit", "commit_writes", "req"),
    row("  flushes per commit", "commit_flushes", "req"),
    row("  barriers per commit", "commit_barriers", "req"),
    row("  reads per commit", "commit_reads", "req"),
    row(`cold read of ${n} rows (every page verified)`, "read_us", "µs"),
  ];
}
