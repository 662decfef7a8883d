// The TCP/IP API (assembly/runtime/tcpip over lwIP) in the harness: the guest's vif on
// netback's wire (tools/harness/netback.ts), the peer a second lwIP in Node or hand-built
// frames (test/net/peer.ts, frames.ts). netinfo takes a DHCP lease from a scripted server,
// or a static address from the command line; echo answers ARP and ping, echoes 1 MiB over
// TCP with equal SHA-256, echoes UDP datagrams (fragmented ones too), reports a reset with
// its exact text, and survives 1,000 connections with nothing held afterwards; tcptest
// checks the client side's errors (refused, no answer, address in use, reset) and 200
// connections with every counter back. A failing test leaves the wire's frames in
// build/pcap/<test>.pcap.
import { describe, expect, onTestFailed, test } from "vitest";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { runWasm } from "../../tools/harness/run.ts";
import type { Domain } from "../../tools/harness/domain.ts";
import { GUEST_MAC, Peer, VifBackend, VifOptions, WirePort } from "../../tools/harness/netback.ts";
import { writePcap } from "../../tools/harness/pcap.ts";
import { BUILD_DIR, wasmPath } from "../../tools/lib/paths.ts";
import { DhcpServer, ERR, GUEST_IP, HOST_IP, HOST_MAC, HostConn, LwipHost } from "./peer.ts";
import * as F from "./frames.ts";

const STATIC = `ip=${GUEST_IP}/24 gw=${HOST_IP}`;
const MAC = GUEST_MAC; // the toolstack's MAC of vif 0

/** Runs app with one vif whose wire ends in `wire`; `stop()` asks the guest to shut down (xl shutdown). */
function run(app: string, cmdline: string, wire: Peer, vif: VifOptions = {}) {
  let dom!: Domain;
  const r = runWasm({
    wasm: wasmPath(app),
    cmdline,
    setup: (d) => {
      dom = d;
      d.vifs.push(new VifBackend(d, 0, { wire, ...vif }));
    },
  });
  const v = dom.vifs[0];
  onTestFailed(() => {
    const name = (expect.getState().currentTestName ?? "tcpip").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120);
    const path = writePcap(join(BUILD_DIR, "pcap", `${name}.pcap`), v.capture);
    console.log(`the wire's ${v.capture.length} frames: ${path}\n${r.console}`);
  });
  const lines = r.console.trimEnd().split("\n");
  return { r, lines, vif: v, last: lines[lines.length - 1] };
}

/** Writes control/shutdown as `xl shutdown` does: the echo app prints its summary and powers off. */
function shutdown(dom: Domain): void {
  dom.xenstored.write(`/local/domain/${dom.domid}/control/shutdown`, "poweroff");
}

/**
 * A peer whose script gets the domain (to stop it) and the wire's port: once the vif
 * connects, or, with `ready`, once the guest's console shows a line matching it (the echo
 * app listens only after its address is set).
 */
class Scripted implements Peer {
  dom!: Domain;
  port!: WirePort;
  ready?: RegExp;
  private console = "";
  private started = false;
  constructor(
    readonly host: LwipHost | null,
    readonly script: (s: Scripted) => void,
    readonly onFrame?: (frame: Uint8Array, port: WirePort) => boolean,
  ) {}
  start(port: WirePort): void {
    this.port = port;
    this.host?.start(port);
    if (!this.ready) this.begin();
  }
  /** The guest's console output (runScripted's onConsole). */
  onConsole(bytes: Uint8Array): void {
    this.console += new TextDecoder().decode(bytes);
    if (this.ready && !this.started && this.port && this.ready.test(this.console)) this.port.after(1, () => this.begin());
  }
  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.script(this);
  }
  receive(frame: Uint8Array, port: WirePort): void {
    if (this.onFrame?.(frame, port)) return;
    this.host?.receive(frame, port);
  }
  /** Stops the guest after ms (a watchdog, so that a stuck test ends). */
  stopAfter(ms: number): void {
    this.port.after(ms, () => shutdown(this.dom));
  }
  stop(): void {
    shutdown(this.dom);
  }
}

/** run() for a Scripted peer: hands it the domain before the guest starts. */
function runScripted(app: string, cmdline: string, peer: Scripted, vif: VifOptions = {}) {
  let dom!: Domain;
  peer.ready ??= app === "echo" ? /echoing TCP and UDP/ : undefined;
  const r = runWasm({
    wasm: wasmPath(app),
    cmdline,
    onConsole: (b) => peer.onConsole(b),
    setup: (d) => {
      dom = d;
      peer.dom = d;
      d.vifs.push(new VifBackend(d, 0, { wire: peer, ...vif }));
    },
  });
  const v = dom.vifs[0];
  onTestFailed(() => {
    const name = (expect.getState().currentTestName ?? "tcpip").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120);
    const path = writePcap(join(BUILD_DIR, "pcap", `${name}.pcap`), v.capture);
    console.log(`the wire's ${v.capture.length} frames: ${path}\n${r.console}`);
  });
  const lines = r.console.trimEnd().split("\n");
  return { r, lines, vif: v, last: lines[lines.length - 1] };
}

/** The run ended by itself with no trap, and the guest's console holds no crash. */
function clean(r: ReturnType<typeof runWasm>) {
  expect(r.console).not.toMatch(/TRAP|HANG|abort:|panic/);
  expect(r.outcome).toBe("poweroff");
}

/** The echo app's summary line, parsed. */
function summary(lines: string[]) {
  const l = lines.find((x) => x.startsWith("echo: poweroff: "));
  expect(l, lines.join("\n")).toBeDefined();
  const m =
    /^echo: poweroff: (\d+) connections, (\d+) bytes over TCP, (\d+) datagrams over UDP, (\d+) errors; held: (\d+) flows, (\d+) pbufs, (\d+) tcp pcbs, (\d+) pool pbufs$/.exec(
      l!,
    );
  expect(m, l).not.toBeNull();
  const [connections, bytes, datagrams, errors, flows, pbufs, pcbs, pool] = m!.slice(1).map(Number);
  return { connections, bytes, datagrams, errors, flows, pbufs, pcbs, pool };
}

describe("netinfo", () => {
  test("takes a DHCP lease from a scripted server (DISCOVER, OFFER, REQUEST, ACK) and prints it", () => {
    const dhcp = new DhcpServer({ router: HOST_IP });
    const { r, lines, last } = run("netinfo", "", { receive: (f, port) => void dhcp.handle(f, port) });
    clean(r);
    expect(lines).toContain(`netinfo: address ${GUEST_IP}/24 gateway ${HOST_IP} mac ${MAC} mtu 1500 (dhcp)`);
    expect(last).toBe("TEST PASS");
    expect(dhcp.discovers).toBeGreaterThanOrEqual(1);
    expect(dhcp.acks).toBe(1);
    expect(
      Array.from(dhcp.clientMac!)
        .map((b) => b.toString(16).padStart(2, "0"))
        .join(":"),
    ).toBe(MAC);
  });

  test("says why when no DHCP server answers in 10 s", () => {
    const { r, last } = run("netinfo", "", { receive: () => {} });
    expect(last).toBe("FAIL tcpip: no DHCP lease in 10 s on vif 0: is the vif on a bridge with a DHCP server?");
    expect(r.ms).toBeGreaterThan(9_500);
    expect(r.ms).toBeLessThan(15_000);
  }, 30_000);

  test("uses ip= and gw= from the command line, and sends no DHCP", () => {
    const dhcp = new DhcpServer();
    const { r, lines, last } = run("netinfo", "ip=10.1.2.3/16 gw=10.1.255.254", { receive: (f, port) => void dhcp.handle(f, port) });
    clean(r);
    expect(lines).toContain(`netinfo: address 10.1.2.3/16 gateway 10.1.255.254 mac ${MAC} mtu 1500 (static)`);
    expect(last).toBe("TEST PASS");
    expect(dhcp.discovers + dhcp.requests).toBe(0);
  });

  test.each([
    [
      "ip=10.0.0.300/24",
      "FAIL tcpip: ip=10.0.0.300/24 on the command line is not an IPv4 address with a prefix length from 1 to 30, like 10.0.0.2/24",
    ],
    ["ip=10.0.0.2", "FAIL tcpip: ip=10.0.0.2 on the command line needs a prefix length, like 10.0.0.2/24"],
    ["ip=10.0.0.2/24 gw=10.0.1.1", "FAIL tcpip: gw=10.0.1.1 on the command line is not on the network 10.0.0.0/24 of 10.0.0.2"],
    ["gw=10.0.0.1", "FAIL tcpip: gw=10.0.0.1 on the command line needs a static address (ip=10.0.0.2/24 gw=10.0.0.1)"],
  ])("refuses %s with a clear error", (cmdline, want) => {
    const { last } = run("netinfo", cmdline, { receive: () => {} });
    expect(last).toBe(want);
  });
});

describe("echo", () => {
  test("answers ARP and ping (hand-built frames)", () => {
    const replies: F.ParsedIp[] = [];
    let arpReply: Uint8Array | undefined;
    const ping = F.icmpEcho(0x4d4f, 1, new TextEncoder().encode("morgana tcpip ping"));
    const peer = new Scripted(
      null,
      (s) => {
        s.port.send(F.arpRequest(HOST_MAC, HOST_IP, GUEST_IP));
        s.stopAfter(5_000);
      },
      (frame, port) => {
        const e = F.parseEthernet(frame);
        if (e.type === F.ETH_ARP && e.payload[7] === 2 && !arpReply) {
          arpReply = frame;
          port.send(F.ethernet(e.src, HOST_MAC, F.ETH_IP, F.ipv4(HOST_IP, GUEST_IP, F.IP_ICMP, ping)));
        } else if (e.type === F.ETH_IP) {
          const ip = F.parseIpv4(e.payload);
          if (ip.proto === F.IP_ICMP) {
            replies.push(ip);
            shutdown(peer.dom);
          }
        }
        return true;
      },
    );
    const { r, lines } = runScripted("echo", STATIC, peer);
    clean(r);
    expect(arpReply).toBeDefined();
    const arp = F.parseEthernet(arpReply!);
    expect([...arp.dst]).toEqual([...HOST_MAC]);
    expect([...arp.payload.subarray(14, 18)]).toEqual([...F.ip4(GUEST_IP)]); // sender: the guest
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ src: GUEST_IP, dst: HOST_IP, headerOk: true });
    expect(replies[0].payload[0]).toBe(0); // echo reply
    expect(F.checksum(replies[0].payload)).toBe(0);
    expect([...replies[0].payload.subarray(4)]).toEqual([...ping.subarray(4)]);
    expect(summary(lines)).toMatchObject({ connections: 0, errors: 0, flows: 0, pbufs: 0 });
  });

  test("echoes 1 MiB over TCP with equal SHA-256, and holds nothing afterwards", () => {
    const data = new Uint8Array(1 << 20);
    let x = 12345;
    for (let i = 0; i < data.length; i++) data[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    const sent = createHash("sha256").update(data).digest("hex");
    const back = createHash("sha256");
    let conn!: HostConn;
    let done = false;
    const host = new LwipHost();
    const peer = new Scripted(host, (s) => {
      s.stopAfter(60_000);
      conn = host.connect(GUEST_IP, 7);
      conn.onData = (d) => {
        back.update(d);
        if (conn.received === data.length) conn.shutdown();
      };
      conn.onEof = () => {
        done = true;
        conn.close();
        s.port.after(50, () => s.stop());
      };
      conn.write(data);
    });
    const { r, lines } = runScripted("echo", STATIC, peer);
    clean(r);
    expect(done).toBe(true);
    expect(conn.received).toBe(data.length);
    expect(back.digest("hex")).toBe(sent);
    expect(summary(lines)).toEqual({ connections: 1, bytes: data.length, datagrams: 0, errors: 0, flows: 0, pbufs: 0, pcbs: 0, pool: 0 });
  }, 60_000);

  test("echoes 1 MiB over a wire that drops 1 %, duplicates, reorders and corrupts: SHA-256 equal", () => {
    const data = new Uint8Array(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >>> 11)) & 0xff;
    const back = createHash("sha256");
    let conn!: HostConn;
    let done = false;
    const host = new LwipHost();
    const peer = new Scripted(host, (s) => {
      s.stopAfter(100_000);
      conn = host.connect(GUEST_IP, 7);
      conn.onData = (d) => {
        back.update(d);
        if (conn.received === data.length) conn.shutdown();
      };
      conn.onEof = () => {
        done = true;
        conn.close();
        s.port.after(50, () => s.stop());
      };
      conn.write(data);
    });
    const faults = { seed: 7, drop: 0.01, duplicate: 0.01, reorder: 0.01, corrupt: 0.001 };
    const { r, lines, vif } = runScripted("echo", STATIC, peer, { wireFaults: faults });
    clean(r);
    expect(vif.wireDrops).toBeGreaterThan(0);
    expect(done).toBe(true);
    expect(back.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    expect(summary(lines)).toMatchObject({ connections: 1, bytes: data.length, errors: 0, flows: 0, pbufs: 0 });
  }, 120_000);

  test("echoes UDP datagrams, fragmented ones too", () => {
    const sizes = [1, 100, 1472, 1473, 4000, 8000];
    const got = new Map<number, Uint8Array>();
    const host = new LwipHost();
    const peer = new Scripted(host, (s) => {
      s.stopAfter(10_000);
      const u = host.udp(5555);
      const send = (n: number) =>
        u.sendTo(
          GUEST_IP,
          7,
          Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff),
        );
      u.onDatagram = (d, from, port) => {
        expect(from).toBe(GUEST_IP);
        expect(port).toBe(7);
        got.set(d.length, d);
        // The first echo means both sides know each other's MAC: then the rest (lwIP's ARP queue holds 3 frames).
        if (got.size === 1) for (const n of sizes.slice(1)) send(n);
        if (got.size === sizes.length) s.stop();
      };
      send(sizes[0]);
    });
    const { r, lines } = runScripted("echo", STATIC, peer);
    clean(r);
    for (const n of sizes) expect([...(got.get(n) ?? [])], `${n} bytes`).toEqual(Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff));
    expect(summary(lines)).toMatchObject({ datagrams: sizes.length, errors: 0, pbufs: 0, pool: 0 });
  }, 30_000);

  test("reports a connection the peer resets: tcp <peer>: connection reset by peer", () => {
    const host = new LwipHost();
    let port = 0;
    const peer = new Scripted(host, (s) => {
      s.stopAfter(10_000);
      const c = host.connect(GUEST_IP, 7);
      c.onConnect = () => c.write(new TextEncoder().encode("then a reset"));
      c.onData = () => {
        port = host.ex.morgana_lwip_tcp_local_port(c.pcb);
        c.abort();
        s.port.after(200, () => s.stop());
      };
    });
    const { r, lines } = runScripted("echo", STATIC, peer);
    clean(r);
    expect(port).toBeGreaterThan(0);
    expect(lines).toContain(`echo: tcp ${HOST_IP}:${port}: connection reset by peer`);
    expect(summary(lines)).toMatchObject({ connections: 1, errors: 1, flows: 0, pbufs: 0, pcbs: 0 });
  });

  test("serves 1,000 connections; flows, pbufs and pcbs are back to 0 afterwards", () => {
    const N = 1000;
    const PARALLEL = 8;
    let started = 0;
    let finished = 0;
    let bad = 0;
    const host = new LwipHost();
    const peer = new Scripted(host, (s) => {
      s.stopAfter(120_000);
      const one = () => {
        const i = started++;
        const msg = Uint8Array.from({ length: 100 }, (_, k) => (i + k) & 0xff);
        const c = host.connect(GUEST_IP, 7);
        const back: number[] = [];
        c.onConnect = () => c.write(msg);
        c.onData = (d) => {
          back.push(...d);
          if (back.length >= msg.length) c.shutdown();
        };
        c.onEof = () => {
          if (back.length !== msg.length || back.some((b, k) => b !== msg[k])) bad++;
          c.close();
          finished++;
          if (started < N) one();
          else if (finished === N) s.port.after(100, () => s.stop());
        };
        c.onError = (err) => {
          bad++;
          finished++;
          if (started < N) one();
          else if (finished === N) s.port.after(100, () => s.stop());
          void err;
        };
      };
      for (let k = 0; k < PARALLEL; k++) one();
    });
    const { r, lines } = runScripted("echo", STATIC, peer);
    clean(r);
    expect(finished).toBe(N);
    expect(bad).toBe(0);
    // Counted in the guest after the last connection: nothing held, every pcb back in lwIP's pool.
    expect(summary(lines)).toEqual({ connections: N, bytes: N * 100, datagrams: 0, errors: 0, flows: 0, pbufs: 0, pcbs: 0, pool: 0 });
    // The console stayed quiet: the address, 10 connections and a note, the summary.
    expect(lines.filter((l) => l.startsWith("echo: connection from"))).toHaveLength(10);
    expect(lines.length).toBeLessThan(20);
  }, 180_000);
});

describe("tcptest (the client side)", () => {
  test("a connection to a closed port: tcp 10.0.0.1:5000: connection refused", () => {
    const host = new LwipHost();
    const peer = new Scripted(host, (s) => s.stopAfter(20_000));
    const { r, lines, last } = runScripted("tcptest", `${STATIC} refused ${HOST_IP} 5000`, peer);
    clean(r);
    expect(lines).toContain(`tcptest: tcp ${HOST_IP}:5000: connection refused`);
    expect(last).toBe("TEST PASS");
  });

  test("a connection nothing answers: no answer to the connection request in 1 s", () => {
    const host = new LwipHost();
    let syns = 0;
    // SYNs to port 5001 vanish on the wire.
    const peer = new Scripted(
      host,
      () => {},
      (frame) => {
        const e = F.parseEthernet(frame);
        if (e.type !== F.ETH_IP) return false;
        const ip = F.parseIpv4(e.payload);
        if (ip.proto !== F.IP_TCP || F.parseTcp(ip).dport !== 5001) return false;
        syns++;
        return true;
      },
    );
    const { r, lines, last } = runScripted("tcptest", `${STATIC} timeout ${HOST_IP} 5001 1000`, peer);
    clean(r);
    expect(lines).toContain(`tcptest: tcp ${HOST_IP}:5001: no answer to the connection request in 1 s`);
    expect(last).toBe("TEST PASS");
    expect(syns).toBeGreaterThanOrEqual(1);
    expect(r.ms).toBeLessThan(5_000);
  });

  test("a second listen on a port: tcp listen on port 8080: address in use", () => {
    const { r, lines, last } = run("tcptest", `${STATIC} inuse 8080`, { receive: () => {} });
    clean(r);
    expect(lines).toContain("tcptest: tcp listen on port 8080: address in use");
    expect(last).toBe("TEST PASS");
  });

  test("a connection the peer resets: the read rejects with connection reset by peer", () => {
    const host = new LwipHost();
    const peer = new Scripted(host, () => {
      host.listen(6000, (c) => {
        c.onData = () => c.abort();
      });
    });
    const { r, lines, last } = runScripted("tcptest", `${STATIC} reset ${HOST_IP} 6000`, peer);
    clean(r);
    expect(lines).toContain(`tcptest: tcp ${HOST_IP}:6000: connection reset by peer`);
    expect(last).toBe("TEST PASS");
  });

  test("a listener's backlog: connections beyond it are reset, the others wait for accept()", () => {
    const host = new LwipHost();
    let resets = 0;
    let connected = 0;
    // One connection after the other (lwIP itself drops SYNs beyond `backlog` half-open ones).
    let opened = 0;
    const next = () => {
      if (opened++ === 5) return;
      const c = host.connect(GUEST_IP, 9000);
      c.onConnect = () => {
        connected++;
        peer.port.after(20, next); // time for a reset to come
      };
      c.onError = (err) => {
        if (err === ERR.RST) resets++;
      };
    };
    const peer = new Scripted(host, next);
    peer.ready = /tcptest: listening/;
    const { r, last } = runScripted("tcptest", `${STATIC} backlog 9000 5`, peer);
    clean(r);
    expect(last).toBe("TEST PASS");
    expect(connected).toBe(5); // the handshake completes before the guest's accept callback refuses
    expect(resets).toBe(3);
  });

  test("a UDP socket's queue: datagrams beyond it are dropped and counted", () => {
    const host = new LwipHost();
    const peer = new Scripted(host, () => {
      const u = host.udp(5555);
      // The first resolves ARP (lwIP queues 3 frames meanwhile); the rest follow 100 ms later.
      u.sendTo(GUEST_IP, 9001, Uint8Array.of(0));
      peer.port.after(100, () => {
        for (let i = 1; i < 10; i++) u.sendTo(GUEST_IP, 9001, Uint8Array.of(i));
      });
    });
    peer.ready = /tcptest: listening/;
    const { r, last } = runScripted("tcptest", `${STATIC} udpqueue 9001 10`, peer);
    clean(r);
    expect(last).toBe("TEST PASS");
  });

  test("200 connections to an echo server on the host: every counter back where it started", () => {
    const host = new LwipHost();
    let served = 0;
    const peer = new Scripted(host, () => {
      host.listen(7, (c) => {
        let n = 0;
        c.onData = (d) => {
          c.write(d);
          n += d.length;
          if (n >= 100) c.close(); // the host closes first: the guest keeps no TIME_WAIT pcb
        };
        served++;
      });
    });
    const { r, lines, last } = runScripted("tcptest", `${STATIC} client ${HOST_IP} 7 200`, peer);
    clean(r);
    expect(served).toBe(200);
    expect(lines).toContain("tcptest: 200 connections; flows 0, pbufs 0, tcp pcbs 0, tcp segments 0");
    expect(last).toBe("TEST PASS");
  }, 60_000);
});
