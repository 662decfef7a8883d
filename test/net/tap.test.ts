// The TAP wire (tools/harness/tap.ts): a real Linux network stack as the guest's
// peer. The test makes a private network namespace (morgana-<pid>) holding only
// lo and a TAP device at 10.77.0.1/24; the guest runs in a worker thread, its
// vif's frames crossing to the TAP through shared-memory queues; ping, arping
// and nc run inside the namespace with `ip netns exec`. Nothing leaves it.
// nettest answers ARP, ping and UDP on the device itself; echo (TCP and UDP over
// lwIP) gets 1..16 MiB from nc back with equal SHA-256, and its handshake with
// Linux, read from the capture, negotiates window scaling, timestamps and SACK.
// A failing test writes the frames that crossed the TAP to a pcap file in a
// temporary folder (its path is printed). Needs root and /dev/net/tun (CI runs
// as root): without them these tests are skipped, saying why. The frame queues
// and the helper's source are checked everywhere.
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FrameQueue, FrameQueueError, MAX_FRAME, Q } from "../../tools/harness/frame-queue.ts";
import { Netns, TapDevice, TapGuest, TapGuestOptions, TapRunResult, buildTapHelper, tapSupport } from "../../tools/harness/tap.ts";
import { writePcap } from "../../tools/harness/pcap.ts";
import { DOM0_MAC } from "../../tools/harness/netback.ts";
import { ROOT, wasmPath } from "../../tools/lib/paths.ts";
import * as F from "./frames.ts";

const support = tapSupport();
if (!support.ok) console.warn(`test/net/tap.test.ts: the TAP wire's tests are SKIPPED: ${support.reason}`);

const TAP = "mtap0";
const HOST_IP = "10.77.0.1";
const GUEST_IP = "10.77.0.2";
const ETH_TEST = 0x88b5;

describe("frame queues: shared memory between the guest's worker and the main thread", () => {
  const frame = (n: number, seed: number) => {
    const f = new Uint8Array(n);
    for (let i = 0; i < n; i++) f[i] = (i * 7 + seed) & 0xff;
    return f;
  };
  /** Equal bytes (toEqual on 64 KiB arrays takes seconds). */
  const same = (got: Uint8Array | undefined, want: Uint8Array) =>
    expect(got && Buffer.from(got).equals(want), `${got?.length} bytes, want ${want.length}`).toBe(true);

  test("frames come out whole and in order, many times round the ring, never split across its end", () => {
    const q = FrameQueue.create("test queue", 1 << 18);
    const sizes = [1, 14, 60, 1514, 9000, 65535, MAX_FRAME, 3, 4097];
    let out = 0;
    for (let i = 0; i < 200; i++) {
      const n = sizes[i % sizes.length];
      expect(q.push(frame(n, i))).toBe(true);
      if (i % 3 === 2)
        for (let f = q.pop(); f; f = q.pop()) {
          same(f, frame(sizes[out % sizes.length], out));
          out++;
        }
    }
    for (let f = q.pop(); f; f = q.pop()) same(f, frame(sizes[out % sizes.length], out++));
    expect(out).toBe(200);
    expect(q.used).toBe(0);
    expect(q.count("PUSHED")).toBe(200);
  });

  test("a full queue refuses a frame; a pop makes room for it", () => {
    const q = FrameQueue.create("test queue", 1 << 18);
    let n = 0;
    while (q.push(frame(MAX_FRAME, n))) n++;
    expect(n).toBe(3); // with its 4-byte length, a fourth 64 KiB frame does not fit in 256 KiB
    expect(q.push(frame(60, 3))).toBe(true); // a small one still fits
    expect(q.push(frame(MAX_FRAME, 4))).toBe(false);
    same(q.pop(), frame(MAX_FRAME, 0));
    expect(q.push(frame(MAX_FRAME, 4))).toBe(true); // at the ring's start, after a wrap marker
    for (const [len, seed] of [
      [MAX_FRAME, 1],
      [MAX_FRAME, 2],
      [60, 3],
      [MAX_FRAME, 4],
    ])
      same(q.pop(), frame(len, seed));
    expect(q.pop()).toBeUndefined();
  });

  test("lengths are checked: frames of 0 and MAX_FRAME + 1 bytes are refused, a corrupt record is named", () => {
    const q = FrameQueue.create("test queue", 1 << 18);
    expect(() => q.push(new Uint8Array(0))).toThrow(/test queue: a frame of 0 bytes: a frame has 1..65536/);
    expect(() => q.push(new Uint8Array(MAX_FRAME + 1))).toThrow(/a frame of 65537 bytes/);
    q.push(frame(100, 1));
    new DataView(q.sab, 64).setUint32(0, 5000, true); // the record's length now claims more than was written
    expect(() => q.pop()).toThrow(FrameQueueError);
    expect(() => q.pop()).toThrow(/test queue: a record of 5000 bytes at 0 \(104 bytes in use/);
    expect(() => new FrameQueue(new SharedArrayBuffer(64 + 100_000), "odd")).toThrow(
      /odd: a queue of 100064 bytes: it needs a power of two/,
    );
  });

  test("a push (or a poke) wakes a waiter on header word 0, which the guest's block() sleeps on", async () => {
    const q = FrameQueue.create("test queue", 1 << 18);
    for (const wake of [() => q.push(frame(60, 0)), () => q.poke()]) {
      const seen = Atomics.load(q.header, Q.SEQ);
      const w = (Atomics as any).waitAsync(q.header, Q.SEQ, seen, 5000);
      expect(w.async).toBe(true);
      setTimeout(wake, 10);
      expect(await w.value).toBe("ok");
    }
  });

  test("tap-helper.c is as clang-format writes it (the shim's .clang-format)", () => {
    const r = spawnSync("clang-format", ["--style=file", "--dry-run", "--Werror", "tools/harness/tap-helper.c"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(r.error, "clang-format: install it with tools/setup").toBeUndefined();
    expect(r.stderr, "run: clang-format -i tools/harness/tap-helper.c").toBe("");
    expect(r.status).toBe(0);
  });
});

const describeTap = support.ok ? describe : describe.skip;

describeTap(
  `the TAP wire: Linux in a private network namespace is the guest's peer${support.ok ? "" : ` (SKIPPED: ${support.reason})`}`,
  () => {
    let ns: Netns | undefined;
    let tap: TapDevice | undefined;
    let pcaps = "";
    let keepPcaps = false; // a failing test's capture stays; else the folder goes in afterAll

    beforeAll(async () => {
      pcaps = mkdtempSync(join(tmpdir(), "morgana-tap-"));
      ns = Netns.create();
      tap = await TapDevice.open(ns, TAP);
      ns.ip("addr", "add", `${HOST_IP}/24`, "dev", TAP);
      ns.ip("link", "set", TAP, "up");
    });

    // Runs even when a test or beforeAll failed: the device, the helper and the namespace go.
    afterAll(async () => {
      try {
        await tap?.close();
      } finally {
        ns?.delete();
        if (pcaps && !keepPcaps) rmSync(pcaps, { recursive: true, force: true });
      }
    });

    const netns = () => ns!;

    /** Starts an app on the TAP; a failing test writes what crossed the TAP to a pcap and prints the console. */
    function guest(app: string, cmdline: string, opts: Partial<TapGuestOptions> = {}): TapGuest {
      const g = new TapGuest({ wasm: wasmPath(app), cmdline, timeoutMs: 120_000, ...opts }, tap!);
      onTestFailed(() => {
        const name = (expect.getState().currentTestName ?? "tap").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120);
        const path = writePcap(join(pcaps, `${name}.pcap`), g.capture);
        keepPcaps = true;
        console.log(`the TAP's ${g.capture.length} frames: ${path}\n${g.console}`);
      });
      return g;
    }

    const macBytes = (mac: string) => Uint8Array.from(mac.split(":").map((h) => parseInt(h, 16)));

    /** nettest's stop frame (EtherType 0x88b5 "stop"), straight into the guest's queue; then its result. */
    async function stopNettest(g: TapGuest, mac = "00:16:3e:00:00:01"): Promise<TapRunResult> {
      g.send(F.ethernet(macBytes(mac), DOM0_MAC, ETH_TEST, new TextEncoder().encode("stop")));
      return g.done;
    }

    /** The run ended by itself, printed TEST PASS, broke no netback rule and gave every grant back. */
    function clean(r: TapRunResult): string[] {
      const lines = r.console.trimEnd().split("\n");
      expect(r.outcome, r.console).toBe("poweroff");
      expect(lines[lines.length - 1], r.console).toBe("TEST PASS");
      expect(r.vif.errors).toEqual([]);
      expect(r.vif.disabled).toBe(false);
      expect(r.grants).toEqual({ grants: 0, mappings: 0 });
      expect(r.wire.fromGuestDropped).toBe(0);
      return lines;
    }

    /** ICMP echo requests (type 8) to the guest and replies (type 0) from it in the capture. */
    function icmpCount(g: TapGuest, dir: "rx" | "tx", type: number): number {
      return g.capture.filter((c) => {
        if (c.dir !== dir || c.frame.length < 42 || ((c.frame[12] << 8) | c.frame[13]) !== F.ETH_IP || c.frame[23] !== F.IP_ICMP)
          return false;
        const ihl = (c.frame[14] & 0xf) * 4;
        return c.frame[14 + ihl] === type;
      }).length;
    }

    test("1,000 pings from Linux, 2 ms apart: none lost; the capture is a pcap tcpdump reads", async () => {
      const g = guest("nettest", `serve ${GUEST_IP} 30000`);
      await g.connected;
      const p = await netns().exec("ping", ["-c", "1000", "-i", "0.002", "-W", "1", "-q", GUEST_IP], { timeoutMs: 60_000 });
      const m = /(\d+) packets transmitted, (\d+) received, (?:.*, )?([\d.]+)% packet loss/.exec(p.stdout);
      expect(m, `ping printed:\n${p.stdout}${p.stderr}`).not.toBeNull();
      expect({ sent: Number(m![1]), received: Number(m![2]), loss: Number(m![3]) }).toEqual({ sent: 1000, received: 1000, loss: 0 });
      const r = await stopNettest(g);
      const lines = clean(r);
      expect(lines.find((l) => l.startsWith("served:"))).toMatch(/ echo=1000 .* bad=0 /);
      expect(icmpCount(g, "rx", 8)).toBe(1000);
      expect(icmpCount(g, "tx", 0)).toBe(1000);
      // The capture as a file, read back by tcpdump.
      const path = writePcap(join(pcaps, "pings.pcap"), g.capture);
      const t = spawnSync("tcpdump", ["-nn", "-r", path, "icmp"], { encoding: "utf8" });
      expect(t.error, "tcpdump: install it with tools/setup").toBeUndefined();
      expect(t.stdout.split("\n").filter((l) => l.includes(`${HOST_IP} > ${GUEST_IP}: ICMP echo request`)).length).toBe(1000);
      expect(t.stdout.split("\n").filter((l) => l.includes(`${GUEST_IP} > ${HOST_IP}: ICMP echo reply`)).length).toBe(1000);
    });

    test("full-size frames: 200 pings of 1,472 bytes (1,514-byte frames at MTU 1500), none lost", async () => {
      const g = guest("nettest", `serve ${GUEST_IP} 30000`);
      await g.connected;
      const p = await netns().exec("ping", ["-c", "200", "-i", "0.002", "-s", "1472", "-M", "do", "-W", "1", "-q", GUEST_IP], {
        timeoutMs: 60_000,
      });
      expect(p.stdout, p.stderr).toMatch(/200 packets transmitted, 200 received, 0% packet loss/);
      clean(await stopNettest(g));
      expect(g.capture.filter((c) => c.dir === "tx" && c.frame.length === 1514).length).toBe(200);
    });

    test("Linux learns the guest's MAC by ARP: the one the toolstack wrote to xenstore", async () => {
      const mac = "00:16:3e:4d:47:2a"; // not the default one: it can only come from xenstore
      netns().ip("neigh", "flush", "dev", TAP);
      const g = guest("nettest", `serve ${GUEST_IP} 30000`, { vif: { mac } });
      await g.connected;
      const a = await netns().exec("arping", ["-c", "3", "-w", "10", "-I", TAP, GUEST_IP], { timeoutMs: 20_000 });
      expect(a.code, a.stdout + a.stderr).toBe(0);
      const replies = [...a.stdout.matchAll(/reply from 10\.77\.0\.2 \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1].toLowerCase());
      expect(replies).toEqual([mac, mac, mac]);
      // The kernel's own resolution, after a ping: the neighbour entry.
      const p = await netns().exec("ping", ["-c", "1", "-W", "2", GUEST_IP]);
      expect(p.code, p.stdout).toBe(0);
      const n = netns().ip("neigh", "show", GUEST_IP, "dev", TAP);
      expect(n).toMatch(new RegExp(`lladdr ${mac} `));
      const r = await stopNettest(g, mac);
      expect(clean(r).find((l) => l.startsWith("served:"))).toMatch(/ arp=[1-9]/);
    });

    test("UDP: a datagram from nc -u comes back from the guest's port 7, equal", async () => {
      const g = guest("nettest", `serve ${GUEST_IP} 30000`);
      await g.connected;
      const msg = randomBytes(700).toString("hex") + "\n"; // 1,401 bytes: one datagram, one frame
      const u = await netns().exec("nc", ["-u", "-w", "2", GUEST_IP, "7"], { stdin: Buffer.from(msg), timeoutMs: 20_000 });
      expect(u.stdout, u.stderr).toBe(msg);
      const lines = clean(await stopNettest(g));
      expect(lines.find((l) => l.startsWith("served:"))).toMatch(/ udp=1 /);
    });

    test("a guest that never finishes is ended at the deadline (outcome timeout); the TAP works on", async () => {
      const g = guest("nettest", `serve ${GUEST_IP} 60000`, { timeoutMs: 2000 });
      await g.connected;
      const t0 = Date.now();
      const r = await g.done;
      expect(r.outcome).toBe("timeout");
      expect(r.console).toMatch(/HANG: the guest did not finish in 2000 ms: its worker was ended/);
      expect(Date.now() - t0).toBeLessThan(10_000);
      // The next guest on the same device is answered.
      const h = guest("nettest", `serve ${GUEST_IP} 30000`);
      await h.connected;
      const p = await netns().exec("ping", ["-c", "3", "-i", "0.2", "-W", "2", GUEST_IP]);
      expect(p.stdout).toMatch(/3 packets transmitted, 3 received/);
      clean(await stopNettest(h));
    });

    // ---- the echo app (TCP and UDP port 7 over lwIP, runtime/tcpip) ----

    /** Starts the echo app at GUEST_IP; resolves once it listens. */
    async function echo(): Promise<TapGuest> {
      const g = guest("echo", `ip=${GUEST_IP}/24 gw=${HOST_IP}`, { timeoutMs: 300_000 });
      await g.until(/echoing TCP and UDP on port 7/);
      return g;
    }

    /** Stops echo as `xl shutdown` does; its summary line, checked: no errors, nothing held. */
    async function stopEcho(g: TapGuest): Promise<string> {
      g.shutdown();
      const r = await g.done;
      expect(r.outcome, r.console).toBe("poweroff");
      expect(r.vif.errors).toEqual([]);
      expect(r.vif.disabled).toBe(false);
      expect(r.wire.fromGuestDropped).toBe(0);
      const summary = r.console.split("\n").find((l) => l.startsWith("echo: poweroff:"));
      expect(summary, r.console).toMatch(/ 0 errors; held: 0 flows, 0 pbufs, 0 tcp pcbs, 0 pool pbufs$/);
      return summary!;
    }

    const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

    test("TCP: 1, 2, 4, 8 and 16 MiB of random bytes through nc to the echo port come back with equal SHA-256", async () => {
      const g = await echo();
      let total = 0;
      for (const mib of [1, 2, 4, 8, 16]) {
        const data = randomBytes(mib << 20);
        // -N: a FIN after the last byte; echo closes its side at that EOF, and nc exits.
        const r = await netns().exec("nc", ["-N", GUEST_IP, "7"], { stdin: data, timeoutMs: 120_000 });
        expect(r.code, `${mib} MiB: nc ${r.timedOut ? "timed out" : `exited ${r.code}`}: ${r.stderr}`).toBe(0);
        expect({ bytes: r.out.length, sha256: sha256(r.out) }).toEqual({ bytes: data.length, sha256: sha256(data) });
        total += data.length;
      }
      expect(await stopEcho(g)).toMatch(new RegExp(`: 5 connections, ${total} bytes over TCP, `));
    }, 300_000);

    test("TCP handshake with Linux, from the TAP's capture: both SYNs carry window scaling, timestamps and SACK-permitted", async () => {
      const g = await echo();
      const data = randomBytes(256 << 10);
      const r = await netns().exec("nc", ["-N", GUEST_IP, "7"], { stdin: data, timeoutMs: 60_000 });
      expect(sha256(r.out)).toBe(sha256(data));
      await stopEcho(g);
      const segs = g.capture
        .filter((c) => c.frame.length >= 54 && ((c.frame[12] << 8) | c.frame[13]) === F.ETH_IP && c.frame[23] === F.IP_TCP)
        .map((c) => ({ dir: c.dir, tcp: F.parseTcp(F.parseIpv4(F.parseEthernet(c.frame).payload)) }));
      const SYN = F.TCP_SYN;
      const syn = segs.find((s) => s.dir === "rx" && s.tcp.dport === 7 && s.tcp.flags & SYN && !(s.tcp.flags & F.TCP_ACK));
      const synAck = segs.find((s) => s.dir === "tx" && s.tcp.sport === 7 && s.tcp.flags & SYN && s.tcp.flags & F.TCP_ACK);
      expect(syn, "Linux's SYN in the capture").toBeDefined();
      expect(synAck, "the guest's SYN-ACK in the capture").toBeDefined();
      const WS = 3,
        SACK_OK = 4,
        TS = 8;
      for (const [who, s] of [
        ["Linux's SYN", syn!],
        ["the guest's SYN-ACK", synAck!],
      ] as const) {
        const o = s.tcp.options;
        expect([o.has(WS), o.has(SACK_OK), o.has(TS)], `${who}: window scale, SACK permitted, timestamps`).toEqual([true, true, true]);
        expect(o.get(WS)!.length, `${who}: the window scale option's length`).toBe(1);
        expect(o.get(TS)!.length).toBe(8);
      }
      const shift = synAck!.tcp.options.get(WS)![0];
      expect(shift, "the guest's window scale (RFC 7323: at most 14)").toBeGreaterThan(0);
      expect(shift).toBeLessThanOrEqual(14);
      // Negotiated: every later segment of the guest carries timestamps, echoing Linux's.
      const later = segs.filter((s) => s.dir === "tx" && s.tcp.sport === 7 && !(s.tcp.flags & SYN));
      expect(later.length).toBeGreaterThan(10);
      expect(later.filter((s) => !s.tcp.options.has(TS)).length, "guest segments without timestamps").toBe(0);
      expect(later.every((s) => s.tcp.checksumOk)).toBe(true);
      // The guest's window, scaled, is larger than the unscaled field can say.
      expect(Math.max(...later.map((s) => s.tcp.window << shift))).toBeGreaterThan(65535);
    }, 120_000);

    test("UDP: datagrams from nc -u to the echo app come back equal, one of 8,000 bytes in IP fragments both ways", async () => {
      const g = await echo();
      for (const n of [1400, 8000]) {
        const msg = Buffer.from(randomBytes(n / 2).toString("hex"));
        const u = await netns().exec("nc", ["-u", "-w", "2", GUEST_IP, "7"], { stdin: msg, timeoutMs: 20_000 });
        expect({ bytes: u.out.length, sha256: sha256(u.out) }, u.stderr).toEqual({ bytes: n, sha256: sha256(msg) });
      }
      expect(await stopEcho(g)).toMatch(/, 2 datagrams over UDP, /);
      // The 8,000 bytes crossed as IP fragments each way (more-fragments set on some frames both ways).
      const frags = (dir: "rx" | "tx") =>
        g.capture.filter((c) => c.dir === dir && c.frame.length > 34 && c.frame[23] === F.IP_UDP && c.frame[20] & 0x20).length;
      expect(frags("rx")).toBeGreaterThan(0);
      expect(frags("tx")).toBeGreaterThan(0);
    });

    test("tap-helper refuses a record whose length is not a frame's, naming it (exit 2)", async () => {
      buildTapHelper();
      for (const len of [5, MAX_FRAME + 1]) {
        const rec = Buffer.alloc(4);
        rec.writeUInt32BE(len);
        const r = await netns().exec(buildTapHelper(), ["mtapbad"], { stdin: rec, timeoutMs: 10_000 });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`tap-helper: a record from stdin of ${len} bytes: a frame has 14..${MAX_FRAME}`);
      }
    });
  },
);
