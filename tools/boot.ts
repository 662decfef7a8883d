// npm run boot -- images/<app>.xl [--disk FILE] [--boots N] [--timeout S]
// Boots the Xen test bed (QEMU TCG), runs the image with `xl create` in dom0 (N times
// in a row on the same disks with --boots), streams the guest's console to stdout,
// copies each disk back to its host file, and exits with the guest's outcome
// (tools/lib/outcome.ts): 0 poweroff, 2 crash, 3 reboot, 5 watchdog, 6 xl create
// failed, 124 timeout (hang), 125 test-bed failure, 1 usage or host error.
// Progress, timings and diagnostics go to stderr.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { EXIT_CODE } from "./lib/outcome.ts";
import { GuestResult, Testbed, TestbedError, TestbedUsageError } from "./testbed/testbed.ts";
import { integerOption, parseCommandLine, reportUsage, UsageError } from "./lib/cli.ts";
import { diskTarget, parseXl, xlListValue } from "./testbed/xlcfg.ts";

const USAGE = "usage: npm run boot -- images/<app>.xl [--disk FILE] [--boots N] [--timeout SECONDS]";

function parseBootArgs() {
  const { values, positionals } = parseCommandLine({
    allowPositionals: true,
    options: { disk: { type: "string" }, boots: { type: "string" }, timeout: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const timeoutS = integerOption("--timeout", values.timeout, 1, 86400) ?? 60;
  const boots = integerOption("--boots", values.boots, 1, 100) ?? 1;
  const disk = values.disk;
  if (positionals.length > 1) throw new UsageError(`one image at a time (got ${positionals.join(" and ")})`);
  let config = positionals[0];
  if (!config) throw new UsageError("no xl config given");
  if (!/\.xl$/.test(config) && existsSync(config.replace(/\.xen$/, ".xl"))) config = config.replace(/\.xen$/, ".xl");
  if (!existsSync(config)) throw new UsageError(`${config} does not exist (build it with npm run build:image)`);
  if (disk !== undefined && !existsSync(disk)) throw new UsageError(`--disk ${disk}: no such file`);
  return { config, disk, timeoutS, boots };
}

const secs = (ms?: number) => (ms === undefined ? "n/a" : `${(ms / 1000).toFixed(1)} s`);

async function main(): Promise<number> {
  const t0 = Date.now();
  let args: ReturnType<typeof parseBootArgs>;
  try {
    args = parseBootArgs();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    reportUsage("boot", USAGE, e.message);
    return EXIT_CODE["host-error"];
  }
  // Disks: --disk FILE, else the host files the config's disk entries name.
  let diskFiles: string[] = [];
  try {
    const targets = xlListValue(parseXl(readFileSync(args.config, "utf8")).find((e) => e.key === "disk")?.value).map(diskTarget);
    if (args.disk) diskFiles = [args.disk, ...targets.slice(1).map((t) => resolve(dirname(args.config), t))];
    else diskFiles = targets.map((t) => resolve(dirname(args.config), t));
    const missing = diskFiles.filter((f) => !existsSync(f));
    if (missing.length) throw new TestbedUsageError(`disk file(s) ${missing.join(", ")} not found: pass --disk FILE`);
  } catch (e) {
    console.error(`boot: ${args.config}: ${(e as Error).message}`);
    return EXIT_CODE["host-error"];
  }

  let tb: Testbed;
  try {
    tb = await Testbed.start();
  } catch (e) {
    console.error(`boot: ${(e as Error).message}`);
    console.error(`boot: total ${secs(Date.now() - t0)}`);
    return EXIT_CODE["testbed-failure"];
  }
  console.error(`boot: test bed ready in ${secs(tb.timings.bootMs)} (set-up ${secs(tb.timings.setupMs)})`);
  let r!: GuestResult;
  try {
    const disks: string[] = [];
    for (const [i, f] of diskFiles.entries()) {
      await tb.createDisk(`disk${i}`, { from: f });
      disks.push(`disk${i}`);
    }
    for (let n = 1; n <= args.boots; n++) {
      if (args.boots > 1) console.error(`boot: boot ${n} of ${args.boots}`);
      r = await tb.run({ config: args.config, disks, timeoutS: args.timeoutS, onLine: (l) => console.log(l) });
      if (r.outcome !== "poweroff" || n === args.boots) break;
      console.error(`boot: ${r.domain}: ${r.detail} (xl create -> first line ${secs(r.timings.firstLineMs)})`);
    }
    // The guest's writes go back to the host files: the next boot sees them.
    for (const [i, f] of diskFiles.entries()) writeFileSync(f, await tb.readDisk(`disk${i}`));
  } catch (e) {
    await tb.stop();
    const failure = e instanceof TestbedError || tb.error;
    console.error(`boot: ${(e as Error).message}`);
    return failure ? EXIT_CODE["testbed-failure"] : EXIT_CODE["host-error"];
  }
  const stopped = await tb.stop();
  console.error(`boot: ${r.domain}: ${r.detail}`);
  if (r.outcome === "create-failed") for (const l of r.xl) console.error(`boot: xl: ${l}`);
  for (const l of r.dmesg) console.error(`boot: xl dmesg: ${l}`);
  if (r.outcome !== "poweroff") for (const l of r.xlLog) console.error(`boot: xl log: ${l}`);
  if (r.testbedLog) console.error(r.testbedLog);
  if (r.consoleDroppedBytes) console.error(`boot: ${r.consoleDroppedBytes} console bytes over the limit were not shown`);
  console.error(
    `boot: timings: test bed ready ${secs(tb.timings.bootMs)}, xl create -> first guest line ${secs(r.timings.firstLineMs)}` +
      ` (xl create itself ${secs(r.timings.createMs)}), guest ${secs(r.timings.totalMs)}, QEMU ${secs(stopped.totalMs)},` +
      ` total ${secs(Date.now() - t0)}`,
  );
  console.error(`boot: outcome ${r.outcome} (exit ${r.exitCode})`);
  return r.exitCode;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`boot: unexpected error: ${e?.stack ?? e}`);
    process.exit(EXIT_CODE["host-error"]);
  },
);
