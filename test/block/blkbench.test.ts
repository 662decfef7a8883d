// blkbench in the harness: the figures npm run bench reads (benchFigures) are
// all there and positive, and the I/O it did really reached the disk.
import { expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { benchFigures } from "../../tools/bench/table.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

test("blkbench prints IOPS and MiB/s for sequential and random 4 KiB reads and writes", () => {
  const r = runWasm({ wasm: wasmPath("blkbench"), cmdline: "200 4", disks: [{ sectors: 2048 }] });
  expect(r.console.trimEnd().split("\n").pop()).toBe("TEST PASS");
  const f = benchFigures(r.console);
  for (const w of ["seq_read", "seq_write", "rand_read", "rand_write"])
    for (const u of ["iops", "mibs"]) expect(f.get(`blk_${w}_${u}`), `blk_${w}_${u}`).toBeGreaterThan(0);
  const v = r.domain.vbds[0];
  // 4 × 200 one-page requests and the final flush, 4 at a time.
  expect(v.log.filter((e) => e.op === "read" || e.op === "write").length).toBe(800);
  expect(v.log.every((e) => e.nsec === 8 || e.op === "flush")).toBe(true);
  expect(v.maxOutstanding).toBe(4);
  expect(v.disk.pending).toEqual([]);
});

test("blkbench refuses a bad depth with a usage line", () => {
  const r = runWasm({ wasm: wasmPath("blkbench"), cmdline: "10 0", disks: [{}] });
  expect(r.console).toBe("FAIL: usage: blkbench <ops> <depth 1..256> [span]\n");
});
