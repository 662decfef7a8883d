// npm run bench [-- --quick] [--harness-only]
// npm run bench -- --paper [--full] [--iterations N] [--strings N]
//   the Mirage paper's evaluation (tools/bench/paper.ts): SQL stress and allocation vs
//   a Linux PV domU, image sizes, boot times; writes results/<date>-quick|full/.
//
// Prints each Morgana figure beside its baseline from the same run:
//   - image size of hello                 vs a Linux PV kernel (the test bed's Debian vmlinuz)
//   - guest entry → app main              vs the same wasm in the Node harness (instantiate → main)
//   - xl create → first console line      vs a minimal C PV guest (the test bed's fixture)
//   - an allocation loop in the unikernel vs the same wasm in Node
//   - task switch and event-channel round trip (schedbench) under Xen vs in the harness
//   - 4 KiB block I/O, sequential and random (blkbench) vs dom0 Linux on the same loop device
//   - SQLite commits and a cold read with block checksums vs without (sqlvfs, harness)
//   - network (tools/bench/net.ts): echo (lwIP) vs a Linux PV domU's echo server, both on xenbr0:
//     TCP bulk each way, request/response latency, connect latency, and the image sizes
// Under QEMU TCG absolute times mean little; ratios within one run are what count.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runPaper } from "./bench/paper.ts";
import { blkioBinary, blockRows, BLOCK_DISK_MIB } from "./bench/block.ts";
import { vfsChecksumRows } from "./bench/vfs.ts";
import { buildLinuxNet, NET_FULL, NET_QUICK, netbenchBinary, runNetBench } from "./bench/net.ts";
import { buildImage } from "./lib/image.ts";
import { runWasm } from "./harness/run.ts";
import { compileApp } from "./lib/asc.ts";
import { benchFigures, renderTable, Row } from "./bench/table.ts";
import { parseBench, runtimeBenchCmdline, runtimeBenchHarness, RuntimeBenchOptions } from "./bench/runtime.ts";
import { Testbed, ensureBootFiles } from "./testbed/testbed.ts";
import { fixtureConfig, fixtureGuest } from "../test/testbed/fixture.ts";
import { integerOption, parseOrExit, runCli } from "./lib/cli.ts";

const USAGE = "usage: npm run bench [-- --quick] [--harness-only]  |  npm run bench -- --paper [--full] [--iterations N] [--strings N]";
const { values: opts } = parseOrExit("bench", USAGE, {
  options: {
    quick: { type: "boolean", default: false },
    "harness-only": { type: "boolean", default: false },
    paper: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
    iterations: { type: "string" },
    strings: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
const quick = opts.quick;
const harnessOnly = opts["harness-only"];
const ALLOC_N = quick ? 200_000 : 1_000_000;
const benchCmd = `entry alloc:${ALLOC_N}`;
const SCHED: RuntimeBenchOptions = quick ? { switches: 50_000, roundTrips: 5_000 } : {};

const rows: Row[] = [];
const failed: string[] = [];
const log = (s: string) => console.log(`[bench] ${s}`);

/** Runs one part of the benchmark; a failure is reported and the other parts still run. */
async function section(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e: any) {
    failed.push(name);
    console.error(`[bench] ${name} FAILED: ${e.message ?? e}`);
  }
}

async function main(): Promise<number> {
  if (opts.help) return (console.log(USAGE), 0);
  const iterations = integerOption("--iterations", opts.iterations, 1);
  const strings = integerOption("--strings", opts.strings, 1);
  if (opts.paper) {
    const { results, dir, ok } = await runPaper({ full: opts.full, iterations, strings, log });
    console.log("\n" + readFileSync(join(dir, "results.md"), "utf8"));
    log(`results in ${dir} (results.md, results.json, fig3-sql.svg, fig4-alloc.svg)`);
    if (!ok) console.error(`[bench] problems: ${results.notes.join("; ")}`);
    return ok ? 0 : 1;
  }
  log(`building apps (allocation loop: ${ALLOC_N} strings)`);
  const benchWasm = await compileApp("bench", "release");

  // The same wasm in Node: the harness is the baseline for guest-side figures.
  const node = runWasm({ wasm: benchWasm, name: "bench", cmdline: benchCmd });
  if (node.exitCode !== 0) throw new Error(`bench app failed in the harness:\n${node.console}`);
  const nodeFig = benchFigures(node.console);
  log(`harness: ${[...nodeFig].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ")}`);

  // Block checksums of the SQLite VFS: with vs without, both in the harness.
  const vfsRows: Row[] = [];
  await section("SQLite block checksums", async () => {
    const sqlvfs = await compileApp("sqlvfs", "release");
    vfsRows.push(...vfsChecksumRows(sqlvfs, { iterations: quick ? 100 : 300 }));
    log(`sqlvfs: ${vfsRows.map((r) => `${r.metric.trim()}: ${r.morgana?.toFixed(2)} vs ${r.baseline?.toFixed(2)} ${r.unit}`).join("; ")}`);
  });

  if (harnessOnly) {
    rows.push({
      metric: "alloc loop, per string",
      morgana: undefined,
      baseline: nodeFig.get("alloc_ns_per_string"),
      against: "same wasm in Node",
      unit: "ns",
    });
    rows.push(...vfsRows);
    console.log("\n" + renderTable(rows));
    return failed.length ? 1 : 0;
  }

  const hello = await buildImage("hello");
  const benchImg = await buildImage("bench");
  const schedImg = await buildImage("schedbench"); // also leaves build/schedbench.wasm for the harness run
  const blkImg = await buildImage("blkbench");
  const blkio = blkioBinary();
  const schedNode = new Map(runtimeBenchHarness(SCHED).map((f) => [f.name, f.value]));
  const boot = ensureBootFiles({ quiet: true });
  rows.push({
    metric: "image size: hello",
    morgana: hello.sizes.image / 1024,
    baseline: statSync(boot.vmlinuz).size / 1024,
    against: "Linux PV kernel (Debian vmlinuz, compressed)",
    unit: "KiB",
    lowerIsBetter: true,
  });

  log("booting the test bed (QEMU TCG: ~1 min)");
  const tb = await Testbed.start({ quiet: true });
  try {
    await section("boot time", async () => {
      // Alternate the two guests so drift in host load hits both alike.
      const mine: number[] = [];
      const base: number[] = [];
      fixtureGuest(); // build it before the first run
      for (let i = 0; i < (quick ? 2 : 4); i++) {
        const h = await tb.run({ config: hello.xl, timeoutS: 120 });
        const f = await tb.run({ configText: fixtureConfig("poweroff bench"), timeoutS: 120 });
        if (h.outcome !== "poweroff" || f.outcome !== "poweroff")
          throw new Error(`boot-time guests failed: hello ${h.detail}; fixture ${f.detail}\n${h.console}`);
        if (h.timings.firstLineMs !== undefined) mine.push(h.timings.firstLineMs);
        if (f.timings.firstLineMs !== undefined) base.push(f.timings.firstLineMs);
      }
      rows.push({
        metric: "xl create → first console line (median)",
        morgana: median(mine),
        baseline: median(base),
        against: "minimal C PV guest (test fixture)",
        unit: "ms",
        lowerIsBetter: true,
      });
    });

    await section("allocation loop", async () => {
      const x = await tb.run({ config: benchImg.xl, extra: benchCmd, timeoutS: quick ? 300 : 1200 });
      if (x.outcome !== "poweroff") throw new Error(`bench image failed under Xen: ${x.detail}\n${x.console}`);
      const xenFig = benchFigures(x.console);
      log(`xen:     ${[...xenFig].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ")}`);
      rows.push({
        metric: "guest entry → app main",
        morgana: xenFig.get("entry_to_main_us"),
        baseline: nodeFig.get("entry_to_main_us"),
        against: "same wasm in Node (domain created → main)",
        unit: "µs",
        lowerIsBetter: true,
      });
      rows.push({
        metric: `alloc loop (${ALLOC_N} strings), per string`,
        morgana: xenFig.get("alloc_ns_per_string"),
        baseline: nodeFig.get("alloc_ns_per_string"),
        against: "same wasm in Node",
        unit: "ns",
        lowerIsBetter: true,
      });
    });

    await section("tasks and event channels", async () => {
      const sb = await tb.run({ config: schedImg.xl, extra: runtimeBenchCmdline(SCHED), timeoutS: quick ? 300 : 1200 });
      if (sb.outcome !== "poweroff") throw new Error(`schedbench failed under Xen: ${sb.detail}\n${sb.console}`);
      const schedXen = new Map(parseBench(sb.console).map((f) => [f.name, f.value]));
      log(`xen:     ${[...schedXen].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ")}`);
      for (const [name, metric] of [
        ["task_switch_ns", "task switch"],
        ["evtchn_round_trip_ns", "event-channel round trip (loopback)"],
      ])
        rows.push({
          metric,
          morgana: schedXen.get(name),
          baseline: schedNode.get(name),
          against: "same wasm in the harness",
          unit: "ns",
          lowerIsBetter: true,
        });
    });

    await section("block I/O", async () => {
      // Block I/O: the unikernel (blkfront → dom0's blkback → loop) vs dom0 Linux (O_DIRECT on a loop device of the same file).
      const blkOps = quick ? 300 : 3000;
      await tb.createDisk("blkbench", { sizeMiB: BLOCK_DISK_MIB });
      const bb = await tb.run({ config: blkImg.xl, extra: `${blkOps} 1`, disks: ["blkbench"], timeoutS: quick ? 300 : 1200 });
      if (bb.outcome !== "poweroff" || bb.verdict !== "pass") throw new Error(`blkbench failed under Xen: ${bb.detail}\n${bb.console}`);
      await tb.createDisk("blkio", { from: blkio });
      // util-linux's losetup by its path: dom0's command shell is busybox ash, whose own losetup applet has no --show.
      const lin = await tb.exec(
        `chmod +x /tmp/disks/blkio.img && L=$(/usr/bin/losetup -f --show /tmp/disks/blkbench.img) || exit 1; ` +
          `/tmp/disks/blkio.img "$L" ${blkOps} ${BLOCK_DISK_MIB * 256}; s=$?; /usr/bin/losetup -d "$L"; exit $s`,
        quick ? 300 : 1200,
      );
      if (lin.status !== 0) throw new Error(`blkio failed in dom0 (status ${lin.status}): ${lin.output}`);
      const blkXen = benchFigures(bb.console);
      const blkLinux = benchFigures(lin.output);
      log(`xen:     ${[...blkXen].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ")}`);
      log(`dom0:    ${[...blkLinux].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ")}`);
      rows.push(...blockRows(blkXen, blkLinux));
    });

    await section("network", async () => {
      const echo = await buildImage("echo");
      const net = await runNetBench(tb, {
        echoXl: echo.xl,
        echoImageBytes: echo.sizes.image,
        linux: await buildLinuxNet(),
        netbench: netbenchBinary(),
        opts: quick ? NET_QUICK : NET_FULL,
        log: (s) => log(`net: ${s}`),
      });
      for (const n of net.notes) log(`net: ${n}`);
      rows.push(...net.rows);
    });
  } finally {
    await tb.stop();
  }
  rows.push(...vfsRows);
  console.log("\n" + renderTable(rows));
  console.log(
    "\nTargets (issue 4): hello image ≤ 100 KiB; entry → main ≤ 1 ms of guest time. QEMU TCG emulates the CPU: Xen-side times are slower than on hardware.",
  );
  if (failed.length) console.error(`[bench] failed parts: ${failed.join(", ")} (see the messages above)`);
  return failed.length ? 1 : 0;
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

runCli("bench", USAGE, main);
