// The network rows of `npm run bench` (issue 14 item 6): in ONE test-bed boot, Morgana's echo
// app (lwIP, assembly/apps/echo) and a Linux PV domU running an echo server side by side, same
// memory, both vifs on dom0's bridge xenbr0 (10.42.0.1/24) with static addresses; dom0 is the
// client (tools/bench/netbench.c, static, copied into dom0 through the share):
//
//   bulk   one connection, N MiB sent while the echo is read back (an echo server's two
//          directions run at once): dom0 → guest is N / (connect → the guest ACKed the last
//          byte), guest → dom0 is N / (connect → the last echoed byte read); every byte compared
//   rr     request/response: 1-byte round trips over one TCP_NODELAY connection, p50 and p99
//   crr    connect, 1 byte there and back, close: p50
//
// Each guest first gets one unmeasured 1 MiB transfer (warm-up). Each measurement runs 3 times, alternating the two guests (Morgana first, then Linux, ...), so
// drift in host load hits both alike; a row is the median of the 3, and every run's figures are
// kept (NetBenchResult.runs). The Linux guest is the SQLite baseline's kernel (the test bed's
// Debian 6.1 vmlinuz) with an initramfs of the same build-initramfs.sh, holding echoserv
// (tools/bench/linux/echoserv.c: RFC 862 on TCP and UDP, an event loop that echoes as echo's
// Echoer does) and tools/bench/linux/netjob (loads xen-netfront, sets the address, runs echoserv),
// plus xen-netfront.ko in a second cpio archive appended to the first (the kernel unpacks both).
// Image size: echo's Xen image vs that kernel + initramfs, both compressed as booted.
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { BUILD_DIR, ROOT } from "../lib/paths.ts";
import { tool, toolSync, toolVersion } from "../lib/exec.ts";
import { cached, sha256 } from "../lib/cache.ts";
import { GuestResult, GuestSpec, Testbed } from "../testbed/testbed.ts";
import { kernelModules, LINUX_CACHE, LINUX_SRC, linuxXl } from "./linux.ts";
import { ensureBootFiles } from "../testbed/testbed.ts";
import { benchFigures, Row } from "./table.ts";

export const MORGANA_IP = "10.42.0.21";
export const LINUX_IP = "10.42.0.22";
const MORGANA_MAC = "00:16:3e:4e:42:21";
const LINUX_MAC = "00:16:3e:4e:42:22";
const PORT = 7;
/** Both guests' memory (the Linux kernel and its initramfs need more than echo's own 32 MiB). */
export const NET_MEMORY_MIB = 128;
const NETBENCH = "/tmp/disks/netbench.img";

export interface NetBenchOptions {
  /** Bytes per bulk transfer (each way). */
  bulkBytes: number;
  /** Round trips per rr run. */
  roundTrips: number;
  /** Connections per crr run. */
  connections: number;
  /** Runs per guest and measurement (the median is reported). */
  repeats: number;
}

export const NET_QUICK: NetBenchOptions = { bulkBytes: 8 << 20, roundTrips: 200, connections: 50, repeats: 3 };
export const NET_FULL: NetBenchOptions = { bulkBytes: 32 << 20, roundTrips: 2000, connections: 200, repeats: 3 };

/** Builds tools/bench/netbench.c as a static binary for dom0; returns its path. */
export function netbenchBinary(): string {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = join(BUILD_DIR, "netbench");
  toolSync(
    "gcc",
    ["-static", "-O2", "-Wall", "-Werror", "-o", out, join(ROOT, "tools", "bench", "netbench.c")],
    "building tools/bench/netbench.c for dom0",
  );
  return out;
}

export interface LinuxNetGuest {
  kernel: string;
  initrd: string;
  /** Bytes, compressed as booted. */
  sizes: { kernel: number; initrd: number };
}

/** The Linux echo guest's initramfs (cached by content under LINUX_CACHE). */
export async function buildLinuxNet(): Promise<LinuxNetGuest> {
  const boot = ensureBootFiles({ quiet: true });
  const mods = kernelModules(boot.key);
  const netfront = join(mods, "kernel", "drivers", "net", "xen-netfront.ko");
  const script = join(LINUX_SRC, "build-initramfs.sh");
  const init = join(LINUX_SRC, "init");
  const netjob = join(LINUX_SRC, "netjob");
  const src = join(LINUX_SRC, "echoserv.c");
  const gcc = await toolVersion("gcc");
  const key = (...parts: (string | Uint8Array)[]) => sha256(...parts).slice(0, 16);
  const echoserv = join(LINUX_CACHE, `echoserv-${key(readFileSync(src), gcc)}`, "echoserv");
  await cached(echoserv, (tmp) =>
    tool("gcc", ["-static", "-O2", "-Wall", "-Werror", "-o", tmp, src], "building echoserv for the Linux guest"),
  );
  const initrd = join(
    LINUX_CACHE,
    `netinitrd-${key(boot.key, mods, readFileSync(script), readFileSync(init), readFileSync(netjob), readFileSync(echoserv), readFileSync(netfront))}.cpio.gz`,
  );
  await cached(initrd, async (tmp) => {
    const base = `${tmp}.base`;
    await tool("bash", [script, base, mods, init, echoserv, netjob], "building the Linux echo guest's initramfs");
    // xen-netfront in a second archive: build-initramfs.sh's module list is the SQLite guest's
    const sh =
      `set -euo pipefail; T=$(mktemp -d); trap 'rm -rf "$T"' EXIT; mkdir -p "$T/lib/modules"; cp "$1" "$T/lib/modules/"; ` +
      `(cd "$T" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) > "$2.extra"; cat "$2.base" "$2.extra" > "$2"; rm -f "$2.base" "$2.extra"`;
    await tool("bash", ["-c", sh, "netinitrd", netfront, tmp], "appending xen-netfront to the initramfs");
  });
  return { kernel: boot.vmlinuz, initrd, sizes: { kernel: statSync(boot.vmlinuz).size, initrd: statSync(initrd).size } };
}

/** Morgana's echo from its generated xl config: vif on xenbr0 with a fixed MAC, a static address. */
export function morganaSpec(echoXl: string, timeoutS: number): GuestSpec {
  const text = readFileSync(echoXl, "utf8");
  if (!/^vif = .*$/m.test(text)) throw new Error(`${echoXl} has no vif line: is "vif": true in assembly/apps/echo/app.json?`);
  return {
    configText: text.replace(/^vif = .*$/m, `vif = [ 'bridge=xenbr0, mac=${MORGANA_MAC}' ]`),
    baseDir: dirname(resolve(echoXl)),
    name: "echo-bench",
    extra: `ip=${MORGANA_IP}/24 gw=10.42.0.1`,
    memoryMiB: NET_MEMORY_MIB,
    timeoutS,
  };
}

/** The Linux guest: the baseline's xl config (linuxXl) with the net initramfs and a vif. */
export function linuxSpec(g: LinuxNetGuest, timeoutS: number): GuestSpec {
  const base = { kernel: g.kernel, initrd: g.initrd } as Parameters<typeof linuxXl>[0];
  const text = linuxXl(base, `netjob ${LINUX_IP}/24 ${PORT}`, NET_MEMORY_MIB) + `vif = [ 'bridge=xenbr0, mac=${LINUX_MAC}' ]\n`;
  return { configText: text, name: "linux-net", timeoutS };
}

export type Guest = "morgana" | "linux";
export type Measure = "bulk" | "rr" | "crr";

/** netbench's command line in dom0 for one measurement against one guest. */
export function netbenchCommand(m: Measure, ip: string, o: NetBenchOptions, timeoutS: number): string {
  switch (m) {
    case "bulk":
      return `${NETBENCH} bulk ${ip} ${PORT} ${o.bulkBytes} ${timeoutS}`;
    case "rr":
      return `${NETBENCH} rr ${ip} ${PORT} ${o.roundTrips} 1 ${timeoutS}`;
    case "crr":
      return `${NETBENCH} crr ${ip} ${PORT} ${o.connections} ${timeoutS}`;
  }
}

/** The figures each measurement must print (a run missing one failed). */
export const MEASURE_FIGURES: Record<Measure, string[]> = {
  bulk: ["net_tx_mibs", "net_rx_mibs", "net_bulk_ms"],
  rr: ["net_rr_p50_us", "net_rr_p99_us", "net_rr_mean_us", "net_rr_min_us"],
  crr: ["net_crr_p50_us", "net_crr_p99_us", "net_crr_mean_us", "net_crr_min_us"],
};

/** netbench's output for one measurement → its figures; throws, quoting the output, when a figure is missing or it failed. */
export function parseNetbench(m: Measure, output: string): Map<string, number> {
  const fail = /^FAIL: .*$/m.exec(output);
  if (fail) throw new Error(fail[0]);
  const f = benchFigures(output);
  const missing = MEASURE_FIGURES[m].filter((k) => !f.has(k));
  if (missing.length) throw new Error(`netbench ${m} printed no ${missing.join(", ")}: ${JSON.stringify(output.slice(0, 500))}`);
  return new Map(MEASURE_FIGURES[m].map((k) => [k, f.get(k)!]));
}

/** One run of one measurement against one guest. */
export interface NetRun {
  guest: Guest;
  measure: Measure;
  repeat: number;
  figures: Record<string, number>;
}

export function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The median over runs of one figure for one guest. */
export function medianOf(runs: NetRun[], guest: Guest, figure: string): number | undefined {
  return median(runs.filter((r) => r.guest === guest && figure in r.figures).map((r) => r.figures[figure]));
}

export const LINUX_AGAINST = "Linux PV domU (Debian 6.1, netfront, echoserv), same memory and bridge";

/** The network rows: Morgana vs the Linux domU, each the median of the runs. */
export function netRows(runs: NetRun[], o: NetBenchOptions, sizes?: { echoImage: number; linux: LinuxNetGuest["sizes"] }): Row[] {
  const mib = o.bulkBytes / 1048576;
  const n = Math.max(0, ...runs.map((r) => r.repeat + 1));
  const row = (metric: string, figure: string, unit: string, lowerIsBetter = false): Row => ({
    metric: `${metric} (median of ${n})`,
    morgana: medianOf(runs, "morgana", figure),
    baseline: medianOf(runs, "linux", figure),
    against: LINUX_AGAINST,
    unit,
    ...(lowerIsBetter ? { lowerIsBetter } : {}),
  });
  const rows = [
    row(`TCP bulk dom0 → guest, ${mib} MiB (echoed at once)`, "net_tx_mibs", "MiB/s"),
    row(`TCP bulk guest → dom0, ${mib} MiB (the echo)`, "net_rx_mibs", "MiB/s"),
    row(`TCP request/response, 1 byte, p50 of ${o.roundTrips}`, "net_rr_p50_us", "µs", true),
    row(`TCP request/response, 1 byte, p99 of ${o.roundTrips}`, "net_rr_p99_us", "µs", true),
    row(`TCP connect + 1 byte echoed + close, p50 of ${o.connections}`, "net_crr_p50_us", "µs", true),
  ];
  if (sizes)
    rows.push({
      metric: "image size: echo (network image)",
      morgana: sizes.echoImage / 1024,
      baseline: (sizes.linux.kernel + sizes.linux.initrd) / 1024,
      against: "Linux PV kernel + initramfs (busybox, netfront, echoserv), compressed",
      unit: "KiB",
      lowerIsBetter: true,
    });
  return rows;
}

export interface NetBenchResult {
  runs: NetRun[];
  rows: Row[];
  /** Readiness of each guest (netbench wait's line) and how each ended. */
  notes: string[];
  morgana?: GuestResult;
  linux?: GuestResult;
}

/**
 * Runs the network benchmark in a started test bed: both guests at once, the measurements
 * alternating between them. Throws (with both guests stopped) when a guest does not come up or a
 * measurement fails.
 */
export async function runNetBench(
  tb: Testbed,
  a: { echoXl: string; echoImageBytes: number; linux: LinuxNetGuest; netbench: string; opts: NetBenchOptions; log: (s: string) => void },
): Promise<NetBenchResult> {
  const o = a.opts;
  // a bound on each measurement: generous for QEMU TCG (echo's bulk ran at 170-720 KiB/s there)
  const measureS = Math.max(120, Math.ceil(o.bulkBytes / (64 << 10)));
  const guestS = 600 + 3 * o.repeats * 3 * measureS;
  await tb.createDisk("netbench", { from: a.netbench });
  const chmod = await tb.exec(`chmod +x ${NETBENCH}`);
  if (chmod.status !== 0) throw new Error(`chmod netbench in dom0: ${chmod.output}`);
  const m = tb.launch(morganaSpec(a.echoXl, guestS));
  const l = tb.launch(linuxSpec(a.linux, guestS));
  const notes: string[] = [];
  const runs: NetRun[] = [];
  const ips: Record<Guest, string> = { morgana: MORGANA_IP, linux: LINUX_IP };
  let failure: Error | undefined;
  try {
    for (const g of ["morgana", "linux"] as Guest[]) {
      const w = await tb.exec(`${NETBENCH} wait ${ips[g]} ${PORT} 300000`, 360);
      if (w.status !== 0) throw new Error(`the ${g} guest did not come up: ${w.output.trim()}`);
      notes.push(`${g}: ${w.output.trim()}`);
      a.log(`${g}: ${w.output.trim()}`);
      // one unmeasured 1 MiB transfer each: the first bulk runs of both guests were 4-7× slower than the rest
      const warm = await tb.exec(`${NETBENCH} bulk ${ips[g]} ${PORT} ${1 << 20} ${measureS}`, measureS + 60);
      if (warm.status !== 0) throw new Error(`warm-up transfer to the ${g} guest failed: ${warm.output.trim()}`);
    }
    for (const measure of ["bulk", "rr", "crr"] as Measure[])
      for (let repeat = 0; repeat < o.repeats; repeat++)
        for (const guest of ["morgana", "linux"] as Guest[]) {
          const r = await tb.exec(netbenchCommand(measure, ips[guest], o, measureS), measureS + 60);
          if (r.status !== 0)
            throw new Error(`netbench ${measure} against ${guest} (run ${repeat + 1}) exited ${r.status}: ${r.output.trim()}`);
          const figures = Object.fromEntries(parseNetbench(measure, r.output));
          runs.push({ guest, measure, repeat, figures });
          a.log(
            `${measure} ${guest} #${repeat + 1}: ${Object.entries(figures)
              .map(([k, v]) => `${k}=${v}`)
              .join(" ")}`,
          );
        }
  } catch (e) {
    failure = e as Error;
  }
  // echo prints its summary on xl shutdown; the Linux guest's init has nothing to stop it cleanly
  const stop = await tb.exec(`xl shutdown ${m.domain}; xl destroy ${l.domain}`, 120).catch((e) => ({ status: -1, output: String(e) }));
  if (stop.status !== 0) notes.push(`stopping the guests: ${stop.output.trim()}`);
  const [mr, lr] = await Promise.all([m.result, l.result]);
  // echo's summary ("echo: poweroff: N connections, B bytes over TCP, ...") counts every byte netbench sent it
  const summary = /^echo: \w+: \d+ connections, (\d+) bytes over TCP, .*$/m.exec(mr.console);
  const sent = (1 << 20) + o.repeats * (o.bulkBytes + o.roundTrips + 20 + o.connections);
  notes.push(
    `morgana: ${mr.detail} — ` +
      (summary
        ? `${summary[0]} (netbench sent ${sent} bytes${failure || Number(summary[1]) === sent ? "" : ": MISMATCH"})`
        : `no summary line; console ends: ${JSON.stringify(mr.console.trim().split("\n").slice(-2).join(" | "))}`),
  );
  notes.push(`linux: ${lr.detail}`);
  if (failure)
    throw new Error(
      `${failure.message}\n--- echo console (tail):\n${mr.console.slice(-1500)}\n--- Linux console (tail):\n${lr.console.slice(-1500)}`,
    );
  return {
    runs,
    rows: netRows(runs, o, { echoImage: a.echoImageBytes, linux: a.linux.sizes }),
    notes,
    morgana: mr,
    linux: lr,
  };
}
