// The block rows of npm run bench: blkbench's figures under Xen beside dom0
// Linux's (tools/bench/blkio.c) on the same loop-backed file, 4 KiB requests at
// queue depth 1 — the depth dd or a plain pread/pwrite loop gives Linux.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BUILD_DIR, ROOT } from "../lib/paths.ts";
import { toolSync } from "../lib/exec.ts";
import { Row } from "./table.ts";

/** Size of the benchmark disk. */
export const BLOCK_DISK_MIB = 64;

/** Builds tools/bench/blkio.c as a static binary for dom0 (no libc of ours there); returns its path. */
export function blkioBinary(): string {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = join(BUILD_DIR, "blkio");
  toolSync("gcc", ["-static", "-O2", "-Wall", "-o", out, join(ROOT, "tools", "bench", "blkio.c")], "building tools/bench/blkio.c for dom0");
  return out;
}

const WORKLOADS: [string, string][] = [
  ["seq_read", "sequential read"],
  ["seq_write", "sequential write"],
  ["rand_read", "random read"],
  ["rand_write", "random write"],
];

/** IOPS for each workload and MiB/s for the sequential ones, unikernel vs dom0 Linux. */
export function blockRows(xen: Map<string, number>, linux: Map<string, number>): Row[] {
  const against = "dom0 Linux, O_DIRECT, same loop-backed file";
  const rows: Row[] = [];
  for (const [k, label] of WORKLOADS)
    rows.push({
      metric: `4 KiB ${label}, queue depth 1`,
      morgana: xen.get(`blk_${k}_iops`),
      baseline: linux.get(`blk_${k}_iops`),
      against,
      unit: "IOPS",
    });
  for (const [k, label] of WORKLOADS.filter(([k]) => k.startsWith("seq")))
    rows.push({
      metric: `4 KiB ${label} throughput`,
      morgana: xen.get(`blk_${k}_mibs`),
      baseline: linux.get(`blk_${k}_mibs`),
      against,
      unit: "MiB/s",
    });
  return rows;
}
