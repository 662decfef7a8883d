// The lwIP module's build (tools/lib/lwip.ts): Debian's source through a private apt list,
// the content cache, exactly what the module imports and exports, and lwIP itself running
// in Node against a hand-built peer: ARP, ICMP echo, and a TCP handshake that negotiates
// window scaling, timestamps and SACK, then echoes data.
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import {
  buildLwip,
  checkLwipModule,
  debSrcSources,
  dscSha256,
  fetchLwipTarball,
  LwipBuild,
  LWIP_ORIG,
  LWIP_WASM,
} from "../../tools/lib/lwip.ts";
import { wat } from "../helpers/wat.ts";
import * as F from "./frames.ts";

let first: LwipBuild;
let second: LwipBuild;
beforeAll(async () => {
  first = await buildLwip(); // fetches and compiles on a cold cache (~20 s), else all hits
  second = await buildLwip();
}, 10 * 60_000);

const IMPORTS = ["now", "rand", "linkoutput", "netif_status", "tcp_accept", "tcp_connected", "tcp_recv", "tcp_sent", "tcp_err", "udp_recv"];
const RAW_API = [
  "lwip_init",
  "tcp_new",
  "tcp_bind",
  "tcp_listen_with_backlog",
  "tcp_write",
  "tcp_output",
  "tcp_recved",
  "tcp_close",
  "tcp_abort",
  "tcp_shutdown",
  "udp_new",
  "udp_sendto",
  "netif_add",
  "netif_set_up",
  "netif_set_link_up",
  "etharp_output",
  "ethernet_input",
  "sys_check_timeouts",
  "dhcp_start",
  "pbuf_alloc",
  "pbuf_free",
];
const GLUE = [
  "netif_add",
  "netif_ip4",
  "input",
  "pbuf_payload",
  "pbuf_len",
  "pbuf_next",
  "tcp_arm",
  "tcp_arm_listen",
  "tcp_bind4",
  "tcp_connect4",
  "tcp_sndbuf",
  "udp_arm",
  "udp_sendto4",
];

describe("the lwIP module", () => {
  it("is built from the cached Debian source and copied to build/lwip.wasm", () => {
    expect(readFileSync(LWIP_WASM).equals(readFileSync(first.wasm))).toBe(true);
    const size = statSync(first.wasm).size;
    expect(size).toBeGreaterThan(30_000);
    expect(size).toBeLessThan(150_000);
    expect(first.clangVersion).toMatch(/clang version 14\./);
  });

  it("is cached by content: a second build compiles and links nothing", () => {
    expect(second.cached).toBe(true);
    expect(second.compiled).toEqual([]);
    expect(second.key).toBe(first.key);
    expect(second.wasm).toBe(first.wasm);
  });

  it("imports exactly the glue's functions from module app, and nothing else", () => {
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(first.wasm)));
    expect(imports.every((i) => i.module === "app" && i.kind === "function")).toBe(true);
    expect(imports.map((i) => i.name).sort()).toEqual(IMPORTS.map((n) => `morgana_lwip_${n}`).sort());
  });

  it("exports the raw API the runtime calls, the glue, its memory and __heap_base", () => {
    const exports = new Map(WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(first.wasm))).map((e) => [e.name, e.kind]));
    for (const n of [...RAW_API, ...GLUE.map((g) => `morgana_lwip_${g}`)]) expect(exports.get(n), n).toBe("function");
    expect(exports.get("memory")).toBe("memory");
    expect(exports.get("__heap_base")).toBe("global");
    // No socket or netconn layer was compiled in.
    expect([...exports.keys()].some((n) => /^(lwip_socket|netconn_|tcpip_)/.test(n))).toBe(false);
  });

  it("is rejected by the module check when it imports anything else", () => {
    const stray = wat(
      `(module (import "env" "abort" (func)) (memory (export "memory") 1) (global (export "__heap_base") i32 (i32.const 0)))`,
    );
    expect(() => checkLwipModule(stray, "x.wasm")).toThrow(/x.wasm: unexpected import env.abort \(function\)/);
    const bare = wat(`(module (memory (export "memory") 1) (global (export "__heap_base") i32 (i32.const 0)))`);
    expect(() => checkLwipModule(bare, "y.wasm")).toThrow(/y.wasm: does not export lwip_init, /);
  });
});

describe("fetching lwIP's source", () => {
  it("derives one deb-src stanza per enabled deb stanza of the system's .sources files", () => {
    const dir = mkdtempSync(join(tmpdir(), "lwip-src-"));
    try {
      writeFileSync(
        join(dir, "debian.sources"),
        "Types: deb\n# a comment\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n\n" +
          "Types: deb\nURIs: http://off.example/\nSuites: x\nEnabled: no\n\nTypes: deb-src\nURIs: http://src.example/\nSuites: y\n",
      );
      writeFileSync(join(dir, "other.list"), "deb http://ignored.example/ z main\n");
      expect(debSrcSources(dir)).toBe(
        "Types: deb-src\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n",
      );
      rmSync(join(dir, "debian.sources"));
      expect(() => debSrcSources(dir)).toThrow(/has no enabled "Types: deb" stanza/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads the tarball's sha256 from the .dsc", () => {
    const dsc = `Format: 3.0 (quilt)\nChecksums-Sha256:\n abc 10 ${LWIP_ORIG}\n def 5 lwip_2.1.3+dfsg1-2.debian.tar.xz\nFiles:\n 123 10 ${LWIP_ORIG}\n`;
    expect(dscSha256(dsc, LWIP_ORIG)).toBe("abc");
    expect(dscSha256(dsc, "other.tar.xz")).toBe(null);
    expect(dscSha256("Format: 3.0\n", LWIP_ORIG)).toBe(null);
  });

  it("says clearly when apt cannot reach the mirror", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lwip-src-"));
    try {
      // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
      writeFileSync(join(dir, "x.sources"), "Types: deb\nURIs: http://127.0.0.1:9/debian\nSuites: bookworm\nComponents: main\n");
      await expect(fetchLwipTarball(join(dir, "work"), dir)).rejects.toThrow(
        /apt-get could not fetch Debian's "lwip" source package from the mirrors in .*no network.*cached in \.cache\/lwip\/[^]*127\.0\.0\.1:9/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** lwIP instantiated in Node with the glue's imports recording what it does. */
function startLwip(wasm: Uint8Array, address = US) {
  const frames: Uint8Array[] = [];
  const events: string[] = [];
  const accepted: number[] = [];
  const received: { pcb: number; p: number }[] = [];
  const datagrams: { p: number; ip: number; port: number }[] = [];
  let now = 1000;
  let seed = 12345;
  let ex!: Record<string, any>;
  const mem = () => new Uint8Array((ex.memory as WebAssembly.Memory).buffer);
  const app = {
    morgana_lwip_now: () => now,
    morgana_lwip_rand: () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0),
    morgana_lwip_linkoutput: (_netif: number, p: number) => {
      const parts: Uint8Array[] = [];
      for (let q = p; q; q = ex.morgana_lwip_pbuf_next(q))
        parts.push(mem().slice(ex.morgana_lwip_pbuf_payload(q), ex.morgana_lwip_pbuf_payload(q) + ex.morgana_lwip_pbuf_len(q)));
      const f = new Uint8Array(ex.morgana_lwip_pbuf_tot_len(p));
      let o = 0;
      for (const x of parts) f.set(x, (o += x.length) - x.length);
      frames.push(f);
      return 0;
    },
    morgana_lwip_netif_status: () => events.push("status"),
    morgana_lwip_tcp_accept: (arg: number, pcb: number, err: number) => (events.push(`accept ${arg} ${err}`), accepted.push(pcb), 0),
    morgana_lwip_tcp_connected: (arg: number) => (events.push(`connected ${arg}`), 0),
    morgana_lwip_tcp_recv: (arg: number, pcb: number, p: number, err: number) => {
      const data = p
        ? Buffer.from(
            mem().slice(ex.morgana_lwip_pbuf_payload(p), ex.morgana_lwip_pbuf_payload(p) + ex.morgana_lwip_pbuf_len(p)),
          ).toString()
        : "";
      events.push(`recv ${arg} ${p ? JSON.stringify(data) : "eof"} ${err}`);
      // Like the runtime: keep p (ERR_OK means it is ours) and give it back after lwIP returns.
      if (p) received.push({ pcb, p });
      return 0;
    },
    morgana_lwip_tcp_sent: (arg: number, _pcb: number, len: number) => (events.push(`sent ${arg} ${len}`), 0),
    morgana_lwip_tcp_err: (arg: number, err: number) => events.push(`err ${arg} ${err}`),
    morgana_lwip_udp_recv: (arg: number, _pcb: number, p: number, ip: number, port: number) => (
      events.push(`udp ${arg} ${port}`),
      datagrams.push({ p, ip, port })
    ),
  };
  const inst = new WebAssembly.Instance(new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>), { app });
  ex = inst.exports as Record<string, any>;
  ex.lwip_init();
  const heap = (ex.__heap_base as WebAssembly.Global).value as number;
  expect(ex.morgana_lwip_netif_size()).toBeLessThan(512);
  const netif = (heap + 15) & ~15;
  const mac = netif + 512;
  mem().set(MAC, mac);
  const n = ex.morgana_lwip_netif_add(
    netif,
    mac,
    1500,
    F.ip4u32(address),
    F.ip4u32(address === "0.0.0.0" ? "0.0.0.0" : "255.255.255.0"),
    F.ip4u32(address === "0.0.0.0" ? "0.0.0.0" : PEER),
  );
  expect(n).toBe(netif);
  ex.netif_set_link_up(netif);
  ex.netif_set_up(netif);
  /** Hands lwIP a received frame in a pool pbuf, as netfront will. */
  const input = (frame: Uint8Array) => {
    const p = ex.pbuf_alloc(0 /* PBUF_RAW */, frame.length, 0x182 /* PBUF_POOL */);
    expect(p).not.toBe(0);
    expect(ex.morgana_lwip_pbuf_next(p)).toBe(0);
    mem().set(frame, ex.morgana_lwip_pbuf_payload(p));
    expect(ex.morgana_lwip_input(p, netif)).toBe(0);
  };
  return {
    ex,
    netif,
    frames,
    events,
    accepted,
    datagrams,
    received,
    input,
    mem,
    tick: (ms: number) => ((now += ms), ex.sys_check_timeouts()),
  };
}

const US = "10.0.0.2";
const PEER = "10.0.0.1";
const MAC = Uint8Array.of(0x00, 0x16, 0x3e, 0x00, 0x00, 0x02); // Xen's OUI
const PEER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x01);

describe("lwIP running in Node against a scripted peer", () => {
  it("answers ARP and ping, and accepts a TCP connection with window scaling, timestamps and SACK, then echoes data", () => {
    const s = startLwip(readFileSync(first.wasm));
    expect(s.events).toContain("status"); // netif_set_up
    expect(s.ex.morgana_lwip_netif_ip4(s.netif)).toBe(F.ip4u32(US));
    s.frames.length = 0; // a gratuitous ARP announcement, if any

    // ARP: who has 10.0.0.2? → a reply from our MAC to the peer's.
    s.input(F.arpRequest(PEER_MAC, PEER, US));
    expect(s.frames).toHaveLength(1);
    const arp = F.parseEthernet(s.frames.shift()!);
    expect(arp.type).toBe(F.ETH_ARP);
    expect([...arp.dst]).toEqual([...PEER_MAC]);
    expect([...arp.payload.subarray(6, 8)]).toEqual([0, 2]); // reply
    expect([...arp.payload.subarray(8, 14)]).toEqual([...MAC]);
    expect([...arp.payload.subarray(14, 18)]).toEqual([...F.ip4(US)]);

    // ICMP echo → echo reply with the same id, sequence and data.
    const ping = F.icmpEcho(0x1234, 7, new TextEncoder().encode("morgana ping"));
    s.input(F.ethernet(MAC, PEER_MAC, F.ETH_IP, F.ipv4(PEER, US, F.IP_ICMP, ping)));
    expect(s.frames).toHaveLength(1);
    const pong = F.parseIpv4(F.parseEthernet(s.frames.shift()!).payload);
    expect(pong).toMatchObject({ src: US, dst: PEER, proto: F.IP_ICMP, headerOk: true });
    expect(pong.payload[0]).toBe(0); // echo reply
    expect(F.checksum(pong.payload)).toBe(0);
    expect([...pong.payload.subarray(4)]).toEqual([...ping.subarray(4)]);

    // Listen on port 80.
    const pcb = s.ex.tcp_new();
    expect(pcb).not.toBe(0);
    expect(s.ex.morgana_lwip_tcp_bind4(pcb, 0, 80)).toBe(0);
    const listener = s.ex.tcp_listen_with_backlog(pcb, 4);
    expect(listener).not.toBe(0);
    s.ex.morgana_lwip_tcp_arm_listen(listener, 7);

    // SYN with MSS 1460, SACK permitted, timestamps and window scale 7.
    const iss = 0x10000000;
    const opts = Uint8Array.of(2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 42, 0, 0, 0, 0, 1, 3, 3, 7);
    s.input(F.ethernet(MAC, PEER_MAC, F.ETH_IP, F.ipv4(PEER, US, F.IP_TCP, F.tcp(PEER, US, 40000, 80, iss, 0, F.TCP_SYN, 65535, opts))));
    expect(s.frames).toHaveLength(1);
    const synAckIp = F.parseIpv4(F.parseEthernet(s.frames.shift()!).payload);
    const synAck = F.parseTcp(synAckIp);
    expect(synAck).toMatchObject({ sport: 80, dport: 40000, ack: iss + 1, flags: F.TCP_SYN | F.TCP_ACK, checksumOk: true });
    expect([...synAck.options.get(2)!]).toEqual([0x05, 0xb4]); // MSS 1460
    expect([...synAck.options.get(3)!]).toEqual([2]); // window scale: TCP_RCV_SCALE
    expect(synAck.options.has(4)).toBe(true); // SACK permitted
    const ts = synAck.options.get(8)!;
    expect([...ts.subarray(4, 8)]).toEqual([0, 0, 0, 42]); // echoes our timestamp

    // Complete the handshake: the listener's accept callback fires with its arg.
    const tsOpt = (val: number) => Uint8Array.of(1, 1, 8, 10, 0, 0, 0, val, ...ts.subarray(0, 4)); // NOP NOP TS
    const ack = (flags: number, seq: number, data = new Uint8Array(), ackNo = synAck.seq + 1) =>
      s.input(
        F.ethernet(
          MAC,
          PEER_MAC,
          F.ETH_IP,
          F.ipv4(PEER, US, F.IP_TCP, F.tcp(PEER, US, 40000, 80, seq, ackNo, flags, 1024, tsOpt(43), data)),
        ),
      );
    ack(F.TCP_ACK, iss + 1);
    expect(s.events).toEqual(["status", "accept 7 0"]);
    expect(s.frames).toHaveLength(0);
    const conn = s.accepted[0];
    expect(conn).not.toBe(0);
    expect(s.ex.morgana_lwip_tcp_remote_port(conn)).toBe(40000);
    expect(s.ex.morgana_lwip_tcp_remote_ip4(conn)).toBe(F.ip4u32(PEER));
    s.ex.morgana_lwip_tcp_arm(conn, 9);

    // Data in: the connection's recv callback gets it (and acknowledges it: tcp_recved).
    ack(F.TCP_ACK | 0x08, iss + 1, new TextEncoder().encode("hello"));
    expect(s.events.slice(2)).toEqual(['recv 9 "hello" 0']);
    expect(s.received).toHaveLength(1);
    for (const r of s.received.splice(0)) {
      expect(r.pcb).toBe(conn);
      s.ex.tcp_recved(r.pcb, s.ex.morgana_lwip_pbuf_tot_len(r.p));
      s.ex.pbuf_free(r.p);
    }

    // Data out: tcp_write + tcp_output send it back, acknowledging the peer's 5 bytes.
    const buf = s.ex.morgana_lwip_netif_size() + 1024 + ((s.ex.__heap_base as WebAssembly.Global).value as number);
    s.mem().set(new TextEncoder().encode("hello"), buf);
    expect(s.ex.tcp_write(conn, buf, 5, 1 /* TCP_WRITE_FLAG_COPY */)).toBe(0);
    expect(s.ex.tcp_output(conn)).toBe(0);
    const out = s.frames.map((f) => F.parseTcp(F.parseIpv4(F.parseEthernet(f).payload)));
    const echo = out.find((t) => t.seq === synAck.seq + 1 && t.flags & F.TCP_ACK);
    expect(echo).toMatchObject({ ack: iss + 1 + 5, checksumOk: true });
    const last = s.frames[out.indexOf(echo!)];
    expect(Buffer.from(last.subarray(last.length - 5)).toString()).toBe("hello");
    expect(echo!.options.has(8)).toBe(true); // timestamps on every segment once negotiated

    // The peer acknowledges: the sent callback reports 5 bytes.
    ack(F.TCP_ACK, iss + 6, new Uint8Array(), synAck.seq + 1 + 5);
    expect(s.events).toContain("sent 9 5");
    // Timers run without complaint.
    for (let i = 0; i < 10; i++) s.tick(250);
  });

  it("echoes a UDP datagram through udp_arm / udp_sendto4", () => {
    const s = startLwip(readFileSync(first.wasm));
    s.input(F.arpRequest(PEER_MAC, PEER, US)); // the peer's MAC, for the reply
    s.frames.length = 0;
    const pcb = s.ex.udp_new();
    expect(pcb).not.toBe(0);
    expect(s.ex.morgana_lwip_udp_bind4(pcb, 0, 7)).toBe(0);
    s.ex.morgana_lwip_udp_arm(pcb, 5);
    const msg = new TextEncoder().encode("echo me");
    s.input(F.ethernet(MAC, PEER_MAC, F.ETH_IP, F.ipv4(PEER, US, F.IP_UDP, F.udp(PEER, US, 5555, 7, msg))));
    expect(s.events.filter((e) => e.startsWith("udp"))).toEqual(["udp 5 5555"]);
    const d = s.datagrams[0];
    expect(d.ip).toBe(F.ip4u32(PEER));
    expect(s.ex.morgana_lwip_pbuf_tot_len(d.p)).toBe(msg.length);
    // Reply outside the callback, as the runtime will: the same pbuf goes back.
    expect(s.ex.morgana_lwip_udp_sendto4(pcb, d.p, d.ip, d.port)).toBe(0);
    s.ex.pbuf_free(d.p);
    expect(s.frames).toHaveLength(1);
    const ip = F.parseIpv4(F.parseEthernet(s.frames[0]).payload);
    expect(ip).toMatchObject({ src: US, dst: PEER, proto: F.IP_UDP, headerOk: true });
    const u = F.parseUdp(ip);
    expect(u).toMatchObject({ sport: 7, dport: 5555, checksumOk: true });
    expect(Buffer.from(u.data).toString()).toBe("echo me");
  });

  it("starts DHCP: dhcp_start broadcasts a DHCPDISCOVER carrying the interface's MAC", () => {
    const s = startLwip(readFileSync(first.wasm), "0.0.0.0");
    s.frames.length = 0;
    expect(s.ex.dhcp_start(s.netif)).toBe(0);
    expect(s.frames).toHaveLength(1);
    const eth = F.parseEthernet(s.frames[0]);
    expect([...eth.dst]).toEqual([...F.BROADCAST]);
    expect([...eth.src]).toEqual([...MAC]);
    const ip = F.parseIpv4(eth.payload);
    expect(ip).toMatchObject({ src: "0.0.0.0", dst: "255.255.255.255", proto: F.IP_UDP, headerOk: true });
    const u = F.parseUdp(ip);
    expect(u).toMatchObject({ sport: 68, dport: 67, checksumOk: true });
    expect(u.data[0]).toBe(1); // BOOTREQUEST
    expect([...u.data.subarray(28, 34)]).toEqual([...MAC]); // chaddr
    expect([...u.data.subarray(236, 240)]).toEqual([99, 130, 83, 99]); // the magic cookie
    expect([...u.data.subarray(240, 243)]).toEqual([53, 1, 1]); // option 53: DHCPDISCOVER
    // Its retransmission timer runs from sys_check_timeouts: a second DISCOVER within ~10 s.
    for (let i = 0; i < 40 && s.frames.length < 2; i++) s.tick(500);
    expect(s.frames.length).toBeGreaterThanOrEqual(2);
  });
});
