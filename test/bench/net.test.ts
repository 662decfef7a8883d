// The network rows of `npm run bench` (tools/bench/net.ts), without Xen: dom0's client
// (tools/bench/netbench.c) against the Linux guest's echo server (tools/bench/linux/echoserv.c)
// over the host's loopback, their figures through parseNetbench into the rows; netbench's
// refusal of a wrong echo (a Node server that flips a byte) and of a closed port; the medians
// and the rows. The Linux guest's initramfs needs the test bed's kernel packages and the run
// beside a real Linux domU needs the test bed: both are `npm run bench`.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer, Server } from "node:net";
import { join } from "node:path";
import { tool } from "../../tools/lib/exec.ts";
import { BUILD_DIR } from "../../tools/lib/paths.ts";
import { LINUX_SRC } from "../../tools/bench/linux.ts";
import {
  MEASURE_FIGURES,
  median,
  medianOf,
  NET_QUICK,
  netbenchBinary,
  netbenchCommand,
  NetRun,
  netRows,
  parseNetbench,
} from "../../tools/bench/net.ts";

let netbench: string;
let echoserv: ChildProcess;
let port: number;
const serverOut: string[] = [];

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

function run(args: string[]): { status: number; out: string } {
  const r = spawnSync(netbench, args, { encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

/** run() without blocking the event loop, for servers in this process. */
function runAsync(args: string[]): Promise<{ status: number; out: string }> {
  return new Promise((res) => {
    const c = spawn(netbench, args, { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    let out = "";
    c.stdout!.on("data", (d) => (out += d));
    c.stderr!.on("data", (d) => (out += d));
    c.on("close", (code) => res({ status: code ?? -1, out }));
  });
}

beforeAll(async () => {
  netbench = netbenchBinary();
  const bin = join(BUILD_DIR, "echoserv-test");
  await tool("gcc", ["-O2", "-Wall", "-Werror", "-o", bin, join(LINUX_SRC, "echoserv.c")], "building echoserv");
  port = await freePort();
  echoserv = spawn(bin, [String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  echoserv.stdout!.on("data", (d) => serverOut.push(String(d)));
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`echoserv did not start: ${serverOut.join("")}`)), 10_000);
    echoserv.stdout!.on("data", () => {
      if (serverOut.join("").includes(`listening on port ${port}`)) (clearTimeout(t), res());
    });
  });
}, 120_000);

afterAll(() => {
  echoserv?.kill("SIGTERM");
});

describe("netbench against echoserv on the loopback", () => {
  test("wait: finds the server up", () => {
    const r = run(["wait", "127.0.0.1", String(port), "5000"]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(`^netbench: 127\\.0\\.0\\.1:${port} up after \\d+ ms$`, "m"));
  });

  test("bulk: 4 MiB echoed, both directions' throughput", () => {
    const r = run(["bulk", "127.0.0.1", String(port), String(4 << 20), "60"]);
    expect(r.status, r.out).toBe(0);
    const f = parseNetbench("bulk", r.out);
    expect([...f.keys()]).toEqual(MEASURE_FIGURES.bulk);
    expect(f.get("net_tx_mibs")).toBeGreaterThan(0);
    expect(f.get("net_rx_mibs")).toBeGreaterThan(0);
    // the last echoed byte comes after the guest acknowledged the last byte sent, so rx ≤ tx
    expect(f.get("net_rx_mibs")!).toBeLessThanOrEqual(f.get("net_tx_mibs")! * 1.0001);
    expect(f.get("net_bulk_ms")).toBeCloseTo((4 / f.get("net_rx_mibs")!) * 1000, 0);
  });

  test("rr and crr: ordered percentiles", () => {
    for (const [m, args] of [
      ["rr", ["rr", "127.0.0.1", String(port), "300", "1", "60"]],
      ["crr", ["crr", "127.0.0.1", String(port), "50", "60"]],
    ] as const) {
      const r = run([...args]);
      expect(r.status, r.out).toBe(0);
      const f = parseNetbench(m, r.out);
      const g = (k: string) => f.get(`net_${m}_${k}_us`)!;
      expect(g("min")).toBeGreaterThan(0);
      expect(g("min")).toBeLessThanOrEqual(g("p50"));
      expect(g("p50")).toBeLessThanOrEqual(g("p99"));
    }
  });

  test("echoserv counts what it echoed (its summary on SIGTERM)", async () => {
    const before = serverOut.join("").length;
    const r = run(["bulk", "127.0.0.1", String(port), "1000", "30"]);
    expect(r.status, r.out).toBe(0);
    echoserv.kill("SIGTERM");
    await new Promise((res) => echoserv.once("exit", res));
    const m = /^echoserv: stop: (\d+) connections, (\d+) bytes over TCP, (\d+) datagrams over UDP, (\d+) errors$/m.exec(serverOut.join(""));
    expect(m, serverOut.join("").slice(before)).not.toBeNull();
    // wait (1) + bulk (1) + rr (1) + crr (50) + bulk (1) connections
    expect(Number(m![1])).toBe(54);
    expect(Number(m![2])).toBe((4 << 20) + 320 + 50 + 1000);
    expect(Number(m![4])).toBe(0);
  });
});

describe("netbench refuses what is not an echo", () => {
  let server: Server;
  let bad: number;
  beforeAll(async () => {
    // echoes everything but byte 1000 of each connection, flipped
    server = createServer((s) => {
      let seen = 0;
      s.on("data", (d: Buffer) => {
        const out = Buffer.from(d);
        if (seen <= 1000 && seen + d.length > 1000) out[1000 - seen] ^= 0xff;
        seen += d.length;
        s.write(out);
      });
      s.on("end", () => s.end());
      s.on("error", () => undefined);
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    bad = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((res) => server.close(() => res())));

  test("a flipped byte fails bulk, naming where", async () => {
    const r = await runAsync(["bulk", "127.0.0.1", String(bad), "100000", "30"]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/^FAIL: netbench bulk: the echo differs from what was sent between bytes \d+ and \d+$/m);
    expect(() => parseNetbench("bulk", r.out)).toThrow(/the echo differs/);
  });

  test("a closed port fails with the error", async () => {
    const closed = await freePort();
    const r = run(["bulk", "127.0.0.1", String(closed), "1000", "30"]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/FAIL: netbench bulk: connect 127\.0\.0\.1:\d+: Connection refused/);
  });

  test("bad arguments: usage, status 2", () => {
    expect(run(["bulk", "127.0.0.1", "70000", "1000", "30"]).status).toBe(2);
    expect(run(["rr", "not-an-ip", "7", "10", "1", "30"]).status).toBe(2);
    expect(run(["frobnicate"]).status).toBe(2);
  });
});

describe("parsing and rows", () => {
  test("a missing figure is an error quoting the output", () => {
    expect(() => parseNetbench("rr", "bench: net_rr_p50_us 12.0 us\n")).toThrow(/printed no net_rr_p99_us, net_rr_mean_us, net_rr_min_us/);
  });

  test("medians over the runs of each guest; rows side by side", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
    const runs: NetRun[] = [];
    const tx = { morgana: [5, 9, 7], linux: [20, 10, 30] };
    for (let repeat = 0; repeat < 3; repeat++)
      for (const guest of ["morgana", "linux"] as const) {
        runs.push({
          guest,
          measure: "bulk",
          repeat,
          figures: { net_tx_mibs: tx[guest][repeat], net_rx_mibs: tx[guest][repeat] / 2, net_bulk_ms: 1 },
        });
        runs.push({
          guest,
          measure: "rr",
          repeat,
          figures: { net_rr_p50_us: 100 + repeat, net_rr_p99_us: 200, net_rr_mean_us: 1, net_rr_min_us: 1 },
        });
      }
    expect(medianOf(runs, "morgana", "net_tx_mibs")).toBe(7);
    expect(medianOf(runs, "linux", "net_tx_mibs")).toBe(20);
    const rows = netRows(runs, NET_QUICK, { echoImage: 200 * 1024, linux: { kernel: 8000 * 1024, initrd: 2000 * 1024 } });
    const byMetric = new Map(rows.map((r) => [r.metric, r]));
    const dtog = byMetric.get("TCP bulk dom0 → guest, 8 MiB (echoed at once) (median of 3)")!;
    expect([dtog.morgana, dtog.baseline, dtog.unit]).toEqual([7, 20, "MiB/s"]);
    const rr = byMetric.get("TCP request/response, 1 byte, p50 of 200 (median of 3)")!;
    expect([rr.morgana, rr.baseline, rr.lowerIsBetter]).toEqual([101, 101, true]);
    // no crr runs: no figures, not zeros
    const crr = rows.find((r) => r.metric.startsWith("TCP connect"))!;
    expect([crr.morgana, crr.baseline]).toEqual([undefined, undefined]);
    const size = byMetric.get("image size: echo (network image)")!;
    expect([size.morgana, size.baseline, size.unit]).toEqual([200, 10000, "KiB"]);
  });

  test("netbench command lines carry the options", () => {
    expect(netbenchCommand("bulk", "10.42.0.21", NET_QUICK, 120)).toBe(`/tmp/disks/netbench.img bulk 10.42.0.21 7 ${8 << 20} 120`);
    expect(netbenchCommand("rr", "10.42.0.22", NET_QUICK, 120)).toBe("/tmp/disks/netbench.img rr 10.42.0.22 7 200 1 120");
    expect(netbenchCommand("crr", "10.42.0.22", NET_QUICK, 120)).toBe("/tmp/disks/netbench.img crr 10.42.0.22 7 50 120");
  });
});
