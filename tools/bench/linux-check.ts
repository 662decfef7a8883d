// npx tsx tools/bench/linux-check.ts [--iterations N] [--alloc N] [--sizes S,S,...] [--console]
//
// Boots the test bed once and runs the Linux baseline guest (tools/bench/linux.ts)
// twice: sqlstress (default 50 iterations of 6 record sizes, on a fresh ext4 disk)
// and the bench wasm's allocation loop (default 1,000,000 strings), then prints the
// parsed figures and the boot timings. A smoke check of the Linux side of
// `npm run bench`; exits 1 when a run fails.
import { Testbed } from "../testbed/testbed.ts";
import { benchFigures } from "./table.ts";
import { buildLinuxBaseline, LinuxRun, parseSqlstress, runLinuxGuest } from "./linux.ts";
import { integerOrExit, parseOrExit } from "../lib/cli.ts";

const USAGE = "usage: npx tsx tools/bench/linux-check.ts [--iterations N] [--alloc N] [--sizes S,S,...] [--console]";
const { values } = parseOrExit("linux-check", USAGE, {
  options: {
    iterations: { type: "string" },
    alloc: { type: "string" },
    sizes: { type: "string", default: "16,256,1024,4096,16384,65536" },
    console: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const ITER = integerOrExit("linux-check", USAGE, "--iterations", values.iterations, 1) ?? 50;
const ALLOC = integerOrExit("linux-check", USAGE, "--alloc", values.alloc, 1) ?? 1_000_000;
// record sizes in bytes, passed to sqlstress on the kernel command line
const SIZES = values.sizes
  .split(",")
  .map((z) => integerOrExit("linux-check", USAGE, "--sizes", z, 1, 1 << 20)!)
  .join(",");
const SHOW_CONSOLE = values.console;
const log = (s: string) => console.log(`[linux-check] ${s}`);
const f = (v: number | undefined, d = 0) => (v === undefined ? "?" : v.toFixed(d));

function timings(name: string, r: LinuxRun) {
  const t = r.timings;
  if (!r.ok)
    log(
      `${name}: ${r.result.detail}${r.diagnostics ? `\n--- dom0 when the guest was stuck ---\n${r.diagnostics}` : ""}` +
        `${r.result.dmesg.length ? `\n--- xl dmesg ---\n${r.result.dmesg.join("\n")}` : ""}\n--- xl log ---\n${r.result.xlLog.join("\n")}`,
    );
  log(
    `${name}: outcome ${r.outcome}, job exit ${r.jobExit ?? "?"}; xl create ${f(t.createMs)} ms, ` +
      `request → first console line ${f(t.createToFirstLineMs)} ms, → init's first line ${f(t.createToInitMs)} ms, ` +
      `kernel entry → init ${f(t.entryToInitMs)} ms, → job start ${f(t.entryToJobMs)} ms, job ${f(t.jobMs)} ms, whole run ${f(t.totalMs)} ms`,
  );
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const b = await buildLinuxBaseline();
  log(
    `built in ${Date.now() - t0} ms: kernel ${b.kernel} (${(b.sizes.kernel / 1024).toFixed(0)} KiB), initramfs ` +
      `${(b.sizes.initrd / 1024).toFixed(0)} KiB (sqlstress ${(b.sizes.sqlstress / 1024).toFixed(0)} KiB, bench ` +
      `${(b.sizes.bench / 1024).toFixed(0)} KiB static), SQLite ${b.sqliteVersion}`,
  );
  log("booting the test bed");
  const tb = await Testbed.start({ quiet: true });
  log(`dom0 ready in ${tb.timings.bootMs} ms`);
  let bad = 0;
  try {
    const s = await runLinuxGuest(tb, { cmd: `sqlstress ${ITER} ${SIZES}`, diskMiB: 128, timeoutS: 1800, baseline: b });
    timings("sqlstress", s);
    if (SHOW_CONSOLE) console.log(s.console);
    const q = parseSqlstress(s.output);
    for (const z of q.sizes) log(`  size ${z.size}: ${z.iterations} iterations, live ${z.live}, checksum ${z.checksum}, ${z.ms} ms`);
    log(`  total ${q.totalMs ?? "?"} ms, ${q.pass ? "TEST PASS" : `FAILED: ${q.failure ?? "no TEST PASS"}`}`);
    if (!s.ok || !q.pass) {
      bad++;
      console.log(s.console);
    }

    const a = await runLinuxGuest(tb, { cmd: `bench entry alloc:${ALLOC}`, timeoutS: 1200, baseline: b });
    timings("bench", a);
    if (SHOW_CONSOLE) console.log(a.console);
    const fig = benchFigures(a.output);
    log(`  ${[...fig].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ")}`);
    if (!a.ok || !fig.has("alloc_ns_per_string")) {
      bad++;
      console.log(a.console);
    }
  } finally {
    const { totalMs } = await tb.stop();
    log(`test bed stopped; QEMU ran ${(totalMs / 1000).toFixed(1)} s; whole check ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return bad ? 1 : 0;
}

main().then(
  (c) => process.exit(c),
  (e) => {
    console.error(`[linux-check] ${e.stack ?? e}`);
    process.exit(1);
  },
);
