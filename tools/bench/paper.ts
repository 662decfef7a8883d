// The Mirage paper's evaluation (§4), reproduced side by side in one test-bed boot:
//   - SQL stress (Figure 3): sqlstress in the unikernel under Xen (SQLite on our VFS
//     over blkfront) vs the same workload as a native program with the same SQLite
//     version on ext4 in a Linux PV domU (tools/bench/linux.ts), vs the unikernel's
//     wasm in the Node harness. Same checksums required of all three.
//   - Allocation (Figure 4): the bench wasm's alloc:N in the unikernel vs the same wasm
//     compiled by wasm2c into a Linux process inside the domU vs Node.
//   - Image sizes, and boot: xl create → first console line, guest entry → main.
// Called by `npm run bench -- --paper [--full]`; writes results/<date>/ (report.ts).
import { cpus, release, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildImage, ImageResult } from "../lib/image.ts";
import { wasmPath, ROOT } from "../lib/paths.ts";
import { toolSync } from "../lib/exec.ts";
import { runWasm } from "../harness/run.ts";
import { Disk } from "../harness/blkback.ts";
import { Testbed, ensureBootFiles } from "../testbed/testbed.ts";
import { benchFigures } from "./table.ts";
import { buildLinuxBaseline, parseSqlstress, runLinuxGuest } from "./linux.ts";
import { allocCurve, PaperResults, SqlRow, writeResults } from "./report.ts";

export interface PaperOptions {
  full: boolean;
  /** Overrides (for a mid-sized run): transactions per size, strings to allocate. */
  iterations?: number;
  strings?: number;
  log: (s: string) => void;
}

export const SIZES = [16, 256, 1024, 4096, 16384, 65536];
const DISK_MIB = 128;

function version(cmd: string, args: string[], rx: RegExp): string {
  try {
    const out = toolSync(cmd, args, `asking ${cmd} for its version`);
    return rx.exec(out)?.[1] ?? out.split("\n")[0];
  } catch {
    return "unknown";
  }
}

export async function runPaper(o: PaperOptions): Promise<{ results: PaperResults; dir: string; ok: boolean }> {
  const ITER = o.iterations ?? (o.full ? 5000 : 200);
  const STRINGS = o.strings ?? (o.full ? 100_000_000 : 20_000_000);
  const sizes = SIZES.join(",");
  const stressCmd = `${ITER} ${sizes}`;
  const notes: string[] = [];
  let ok = true;
  const problem = (what: string) => {
    ok = false;
    notes.push(what);
    o.log(`PROBLEM: ${what}`);
  };
  const log = o.log;

  log(`building images (sqlstress ${ITER} transactions × ${SIZES.length} sizes; ${STRINGS.toLocaleString("en-GB")} strings)`);
  const img: Record<string, ImageResult> = {};
  for (const app of ["contacts", "sqlstress", "bench", "hello"]) img[app] = await buildImage(app);
  const linux = await buildLinuxBaseline({ benchWasm: wasmPath("bench") });

  // The harness (Node on the host): the same wasm, memory-backed blkback.
  log("harness: sqlstress");
  const hs = runWasm({ wasm: wasmPath("sqlstress"), cmdline: stressCmd, disks: [new Disk({ sectors: (DISK_MIB << 20) / 512 })] });
  const harness = parseSqlstress(hs.console);
  if (!harness.pass) problem(`sqlstress in the harness: ${harness.failure ?? hs.detail}`);
  log("harness: alloc");
  const ha = runWasm({ wasm: wasmPath("bench"), cmdline: `alloc:${STRINGS}` });
  const nodeAlloc = benchFigures(ha.console);
  const hentry = benchFigures(runWasm({ wasm: wasmPath("bench"), cmdline: "entry" }).console);

  log("booting the test bed");
  const tb = await Testbed.start({ quiet: true });
  const tbInfo = { dom0Ready: `${(tb.timings.bootMs / 1000).toFixed(1)} s` };
  let mStress = parseSqlstress(""),
    lStress = parseSqlstress("");
  let mAlloc = new Map<string, number>(),
    lAlloc = new Map<string, number>();
  const boot: PaperResults["boot"] = { morgana: {}, linux: {} };
  try {
    // Boot: the bench image (entry job) vs the Linux domU, twice each, alternating; medians.
    const mine: number[] = [],
      theirs: number[] = [],
      mEntry: number[] = [],
      lEntry: number[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await tb.run({ config: img.bench.xl, extra: "entry", timeoutS: 120 });
      if (m.outcome !== "poweroff") problem(`bench entry under Xen: ${m.detail}`);
      if (m.timings.firstLineMs !== undefined) mine.push(m.timings.firstLineMs);
      const e = benchFigures(m.console).get("entry_to_main_us");
      if (e !== undefined) mEntry.push(e / 1000);
      const l = await runLinuxGuest(tb, { cmd: "bench entry", baseline: linux, timeoutS: 300 });
      if (!l.ok) problem(`bench entry in the Linux domU: ${l.outcome}`);
      if (l.timings.createToFirstLineMs !== undefined) theirs.push(l.timings.createToFirstLineMs);
      if (l.timings.entryToInitMs !== undefined) lEntry.push(l.timings.entryToInitMs);
    }
    boot.morgana = { createToFirstLineMs: median(mine), entryToMainMs: median(mEntry) };
    boot.linux = { createToFirstLineMs: median(theirs), entryToMainMs: median(lEntry) };

    log(`Xen: sqlstress in the unikernel (${ITER * SIZES.length} transactions)`);
    await tb.createDisk("stress", { sizeMiB: DISK_MIB });
    // Bounded waits, generous against what TCG needs (~0.2 s a transaction, ~5 µs a string).
    const stressS = Math.max(900, ITER * SIZES.length * 2);
    const allocS = Math.max(300, Math.ceil(STRINGS * 60e-6));
    const ms = await tb.run({ config: img.sqlstress.xl, extra: stressCmd, disks: ["stress"], timeoutS: stressS });
    mStress = parseSqlstress(ms.console);
    if (!mStress.pass) problem(`sqlstress under Xen: ${mStress.failure ?? ms.detail}`);
    log(`Xen: sqlstress in the Linux domU`);
    const ls = await runLinuxGuest(tb, { cmd: `sqlstress ${stressCmd}`, diskMiB: DISK_MIB, baseline: linux, timeoutS: stressS });
    lStress = parseSqlstress(ls.output);
    if (!lStress.pass) problem(`sqlstress in the Linux domU: ${lStress.failure ?? ls.outcome}`);

    log(`Xen: ${STRINGS.toLocaleString("en-GB")} strings, wasm2c native in the Linux domU (one guest, one process)`);
    const la = await runLinuxGuest(tb, { cmd: `bench alloc:${STRINGS}`, baseline: linux, timeoutS: allocS });
    lAlloc = benchFigures(la.output);
    if (!la.ok || !lAlloc.has("alloc_total_ms")) problem(`alloc in the Linux domU: ${la.outcome}`);
    log(`Xen: ${STRINGS.toLocaleString("en-GB")} strings in the unikernel (one guest)`);
    const ma = await tb.run({ config: img.bench.xl, extra: `alloc:${STRINGS}`, timeoutS: Math.max(300, Math.ceil(STRINGS * 20e-6)) });
    mAlloc = benchFigures(ma.console);
    if (ma.outcome !== "poweroff" || !mAlloc.has("alloc_total_ms")) problem(`alloc under Xen: ${ma.detail}`);
  } catch (e: any) {
    problem(`the Xen runs stopped early: ${e.message ?? e} (figures after that point are missing)`);
  } finally {
    await tb.stop();
  }

  const rows: SqlRow[] = SIZES.map((size) => {
    const m = mStress.sizes.find((s) => s.size === size);
    const l = lStress.sizes.find((s) => s.size === size);
    const h = harness.sizes.find((s) => s.size === size);
    const sums = [m, l, h].filter((x) => x).map((x) => `${x!.live}/${x!.checksum}`);
    return { size, morgana: m?.ms, linux: l?.ms, harness: h?.ms, checksumsAgree: sums.length === 3 && new Set(sums).size === 1 };
  });
  for (const r of rows) if (!r.checksumsAgree) problem(`sqlstress size ${r.size}: the three runs did not end in the same state`);

  const bootFiles = ensureBootFiles({ quiet: true });
  const pkg = (name: string) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  const date = new Date();
  const results: PaperResults = {
    date: date.toISOString().replace("T", " ").slice(0, 16) + " UTC",
    mode: o.full ? "full" : "quick",
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      "host cores": String(cpus().length),
      "host memory": `${Math.round(totalmem() / 2 ** 30)} GiB`,
      "host kernel": release(),
      node: process.version,
    },
    testbed: {
      hypervisor: `Xen ${/^xen-hypervisor-[^=]+=(\S+)$/m.exec(bootFiles.key)?.[1] ?? "unknown"} (Debian 12 package)`,
      emulation: `QEMU ${version("qemu-system-x86_64", ["--version"], /version (\S+)/)}, TCG (no hardware virtualisation), -cpu max -smp 1 -m 2048`,
      dom0: `Debian 12, Linux ${/^linux-image-([^=]+)=(\S+)$/m.exec(bootFiles.key)?.slice(1).join(" ") ?? "unknown"}`,
      "dom0 ready": tbInfo.dom0Ready,
      "Morgana guests": `${img.sqlstress.config.memory} MiB (sqlstress), ${img.bench.config.memory} MiB (bench), 1 vCPU, PV`,
      "Linux guest": `128 MiB, 1 vCPU, PV, the dom0's Debian kernel + a busybox initramfs`,
      disks: `${DISK_MIB} MiB raw files in dom0 (its RAM-backed root), attached by xl as raw disks (blkback over a loop device), a fresh one per run; Linux formats its disk ext4`,
    },
    versions: {
      SQLite: linux.sqliteVersion,
      AssemblyScript: pkg("assemblyscript"),
      wasm2c: version("/usr/bin/wasm2c", ["--version"], /(\S+)/),
      gcc: version("gcc", ["--version"], /\) (\S+)/),
      clang: version("clang-14", ["--version"], /version (\S+)/),
      Morgana: JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version,
    },
    sql: { iterations: ITER, rows },
    alloc: {
      strings: STRINGS,
      morgana: allocCurve(mAlloc, STRINGS),
      linuxNative: allocCurve(lAlloc, STRINGS),
      node: allocCurve(nodeAlloc, STRINGS),
    },
    images: ["hello", "bench", "contacts", "sqlstress"].map((name) => ({ name, bytes: img[name].sizes.image })),
    linuxImage: { kernel: linux.sizes.kernel, initrd: linux.sizes.initrd },
    boot,
    notes: [
      ...(o.full
        ? []
        : [
            `A quick run: ${ITER} transactions per size (the paper: 5,000) and ${STRINGS.toLocaleString("en-GB")} strings (the paper: 100 million); \`--full\` runs the paper's sizes.`,
          ]),
      `Node's entry → main for the same wasm (instantiate → main, host CPU): ${(hentry.get("entry_to_main_us") ?? NaN).toFixed(0)} µs.`,
      ...notes,
    ],
  };
  const dir = join(ROOT, "results", date.toISOString().slice(0, 10) + (o.full ? "-full" : "-quick"));
  writeResults(dir, results);
  return { results, dir, ok };
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
