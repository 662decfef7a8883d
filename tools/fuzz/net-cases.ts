// The network path's fuzz cases (npm run fuzz -- --target netif|frames, test/fuzz/net.test.ts):
//   netif   a hostile netback (tools/harness/netback.ts): TX and RX responses with mangled
//           ids, statuses, offsets and flags (more_data / extra_info chains, sizes), answers
//           duplicated, missing or with no request, RX starved, and hostile mac / mtu /
//           feature keys in xenstore at connect. App nettest serves 20 pings; it must answer
//           them all or fail the device with a clear error, and give every page and grant back.
//   frames  random, structured and mutated Ethernet / ARP / IPv4 / ICMP / UDP / TCP frames
//           (bad lengths, fragments, options, checksums, TCP flags, sequence numbers, window
//           scale and SACK blocks; seeded mutations of the frames of a valid session captured
//           in the same run) thrown at the echo app (lwIP) while a TCP echo runs. After the
//           junk the guest must answer a ping and echo a fresh connection, and at shutdown hold
//           no flow, pbuf or pcb (pool pbufs only in IP reassembly, bounded by lwIP).
// A case is deterministic in its seed (the guest's own timing aside).
import { runWasm } from "../harness/run.ts";
import type { Domain } from "../harness/domain.ts";
import { blankChecksum, completeChecksum, DOM0_MAC, GUEST_MAC, NETRXF, Peer, WirePort } from "../harness/netback.ts";
import { wasmPath } from "../lib/paths.ts";
import { CaseResult, classify, rng } from "./cases.ts";
import * as F from "../../test/net/frames.ts";
import { GUEST_IP, HOST_IP, HOST_MAC, HostConn, LwipHost } from "../../test/net/peer.ts";

type Rng = ReturnType<typeof rng>;
const ETH_TEST = 0x88b5;
const PING_ID = 0x5a5a;
/** IP_REASS_MAX_PBUFS (lwIP's opt.h default; lwip/lwipopts.h keeps it): pool pbufs reassembly may hold. */
const IP_REASS_MAX_PBUFS = 10;

const macBytes = (s: string) => Uint8Array.from(s.split(":").map((h) => parseInt(h, 16)));
const GUEST = macBytes(GUEST_MAC);

// ---- netif ----

/** dom0's side of nettest serve: ARP, then `count` pings one at a time (resent after 30 ms), then the stop frame. */
class Pinger implements Peer {
  replies = 0;
  private mac?: Uint8Array;
  private seq = 0;
  private port!: WirePort;
  constructor(readonly count: number) {}
  start(port: WirePort): void {
    this.port = port;
    this.arp();
  }
  private arp(): void {
    if (this.mac) return;
    this.port.send(F.arpRequest(DOM0_MAC, HOST_IP, GUEST_IP));
    this.port.after(30, () => this.arp());
  }
  private ping(seq: number): void {
    if (this.seq !== seq) return;
    const ip = F.ipv4(HOST_IP, GUEST_IP, F.IP_ICMP, F.icmpEcho(0x4d4f, seq, new Uint8Array(56).fill(seq & 0xff)), seq);
    this.port.send(F.ethernet(this.mac!, DOM0_MAC, F.ETH_IP, ip));
    this.port.after(30, () => this.ping(seq));
  }
  private next(): void {
    if (this.replies >= this.count) {
      this.seq = -1;
      for (let i = 0; i < 3; i++)
        this.port.after(i * 30, () => this.port.send(F.ethernet(this.mac!, DOM0_MAC, ETH_TEST, new TextEncoder().encode("stop"))));
      return;
    }
    this.ping(++this.seq);
  }
  receive(frame: Uint8Array): void {
    if (frame.length < 42) return;
    const e = F.parseEthernet(frame);
    if (e.type === F.ETH_ARP && frame[21] === 2 && !this.mac) {
      this.mac = frame.slice(22, 28);
      this.next();
    } else if (e.type === F.ETH_IP && this.mac && this.seq > 0) {
      const p = e.payload;
      if (p[9] !== F.IP_ICMP) return;
      const icmp = p.subarray((p[0] & 15) * 4);
      if (icmp[0] === 0 && ((icmp[6] << 8) | icmp[7]) === this.seq) {
        this.replies++;
        this.next();
      }
    }
  }
}

const STATUSES = [-2, -1, 0, 1, 2, 7, 98, 4096, 4097, -32768, 32767];

export function netifCase(seed: number): CaseResult {
  const r = rng(seed);
  const muts: string[] = [];
  const txPlan = new Map<number, (x: { id: number; status: number }) => void>();
  const rxPlan = new Map<number, (x: { id: number; offset: number; flags: number; status: number }) => void>();
  const faults: Record<string, unknown> = {};
  const nMut = 1 + r.int(3);
  for (let k = 0; k < nMut; k++) {
    const at = r.int(50);
    const kind = r.pick([
      "tx-id",
      "tx-status",
      "rx-id",
      "rx-offset",
      "rx-flags",
      "rx-status",
      "rx-chain",
      "dup-tx",
      "extra-rx",
      "swallow-tx",
      "starve",
    ] as const);
    const v = r.int(2 ** 16);
    const status = r.pick(STATUSES);
    if (kind === "tx-id") txPlan.set(at, (x) => void (x.id = r.next() < 0.5 ? v : v % 8));
    else if (kind === "tx-status") txPlan.set(at, (x) => void (x.status = status));
    else if (kind === "rx-id") rxPlan.set(at, (x) => void (x.id = r.next() < 0.5 ? v : (x.id + 1 + (v % 4)) & 0xffff));
    else if (kind === "rx-offset") rxPlan.set(at, (x) => void (x.offset = r.pick([1, 2, 14, 4000, 4095, 4096, v])));
    else if (kind === "rx-flags")
      rxPlan.set(at, (x) => void (x.flags = r.pick([NETRXF.moreData, NETRXF.extraInfo, NETRXF.csumBlank, NETRXF.dataValidated, v, 0])));
    else if (kind === "rx-status") rxPlan.set(at, (x) => void (x.status = status));
    else if (kind === "rx-chain") {
      // more_data on this response and the next few: a frame that runs on into the following ones.
      const len = 1 + (v % 25);
      for (let i = 0; i < len; i++) rxPlan.set(at + i, (x) => void ((x.flags |= NETRXF.moreData), r.next() < 0.3 && (x.status = 4096)));
    } else if (kind === "dup-tx") faults.duplicateTx = at;
    else if (kind === "extra-rx") faults.extraRx = at;
    else if (kind === "swallow-tx") faults.swallowTxFrom = at;
    else if (kind === "starve") faults.rxStarveMs = 50 + r.int(400);
    muts.push(
      kind === "starve"
        ? `starve ${faults.rxStarveMs} ms`
        : `${kind}@${at}${kind === "tx-status" || kind === "rx-status" ? `=${status}` : ""}`,
    );
  }
  if (txPlan.size) faults.mangleTx = (x: { id: number; status: number }, n: number) => txPlan.get(n)?.(x);
  if (rxPlan.size) faults.mangleRx = (x: { id: number; offset: number; flags: number; status: number }, n: number) => rxPlan.get(n)?.(x);
  // Hostile keys at connect: the toolstack's mac / mtu in the frontend directory, the backend's features.
  let frontendKeys: Record<string, string | undefined> | undefined;
  let keys: Record<string, string | undefined> | undefined;
  if (r.next() < 0.3) {
    const k = r.pick(["mac", "mtu"] as const);
    const v =
      k === "mac"
        ? r.pick([
            "",
            "00:16:3e:00:00",
            "00:16:3e:00:00:01:02",
            "zz:16:3e:00:00:01",
            "00-16-3e-00-00-01",
            "0:16:3e:0:0:1",
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "000:16:3e:00:00:01",
            undefined,
          ])
        : r.pick([
            "",
            "0",
            "-1",
            "abc",
            "67",
            "68",
            "575",
            "9000",
            "65535",
            "65536",
            "1500x",
            " 1500",
            "0x5dc",
            "99999999999999999999",
            undefined,
          ]);
    frontendKeys = { [k]: v };
    muts.push(`frontend ${k}=${JSON.stringify(v)}`);
  }
  if (r.next() < 0.3) {
    const k = r.pick([
      "feature-sg",
      "feature-rx-copy",
      "feature-split-event-channels",
      "multi-queue-max-queues",
      "feature-gso-tcpv4",
      "feature-ctrl-ring",
    ]);
    const v = r.pick(["", "0", "1", "2", "-1", "abc", "1 ", "01", "4294967297", undefined]);
    keys = { [k]: v };
    muts.push(`backend ${k}=${JSON.stringify(v)}`);
  }
  const peer = new Pinger(20);
  const what = `nettest serve 10.0.0.2 1000 plain 300; ${muts.join(" ")}`;
  const run = runWasm({
    wasm: wasmPath("nettest"),
    cmdline: "serve 10.0.0.2 1000 plain 300",
    vifs: [{ wire: peer, faults, frontendKeys, keys, mtu: frontendKeys && "mtu" in frontendKeys ? null : undefined }],
  });
  const c = classify(run, /^$/);
  const base = { target: "netif" as const, seed, what };
  if (c.verdict === "trap" || c.verdict === "hang") return { ...base, ...c };
  // Nothing left behind, whatever happened: no grant, no mapping, the device's pages given back.
  const live = run.domain.gnttab.live();
  if (live.grants || live.mappings)
    return { ...base, verdict: "leak", detail: `${live.grants} grants, ${live.mappings} mappings left: ${c.detail}` };
  const pages = run.console.split("\n").find((l) => /^not ok \d+ I\/O pages back/.test(l));
  if (pages) return { ...base, verdict: "leak", detail: pages };
  if (c.verdict === "ok" && peer.replies < 20)
    return { ...base, verdict: "wrong-data", detail: `TEST PASS after ${peer.replies} of 20 pings` };
  if (c.verdict === "clear-error") {
    // A failure must name the device's trouble (nettest prints it as "device: ..." or "open: ...").
    const why = run.console.split("\n").find((l) => /^(device|open): /.test(l));
    if (!why && peer.replies < 20)
      return {
        ...base,
        verdict: "hang",
        detail: `the guest stopped answering (${peer.replies} of 20 pings) and said no more than: ${c.detail}`,
      };
    return { ...base, verdict: "clear-error", detail: why ?? c.detail };
  }
  return { ...base, ...c };
}

// ---- frames ----

/** Recomputes the IPv4 header checksum and, for an unfragmented TCP/UDP/ICMP packet that fits, its own. */
export function repairChecksums(f: Uint8Array): void {
  if (f.length < 34 || ((f[12] << 8) | f[13]) !== 0x0800 || f[14] >> 4 !== 4) return;
  const ihl = (f[14] & 15) * 4;
  if (ihl < 20 || 14 + ihl > f.length) return;
  f[24] = f[25] = 0;
  const s = F.checksum(f.subarray(14, 14 + ihl));
  f[24] = s >> 8;
  f[25] = s & 0xff;
  if (blankChecksum(f)) {
    completeChecksum(f);
    return;
  }
  const total = (f[16] << 8) | f[17];
  if (f[23] === F.IP_ICMP && total >= ihl + 8 && 14 + total <= f.length && !(((f[20] << 8) | f[21]) & 0x3fff)) {
    const at = 14 + ihl;
    f[at + 2] = f[at + 3] = 0;
    const c = F.checksum(f.subarray(at, 14 + total));
    f[at + 2] = c >> 8;
    f[at + 3] = c & 0xff;
  }
}

function bytes(r: Rng, n: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: n }, () => r.int(256));
}

/** TCP options, well-formed or not: MSS, window scale (also > 14), SACK-permitted, SACK blocks, timestamps, bad lengths. */
function tcpOptions(r: Rng, near: number): Uint8Array {
  const out: number[] = [];
  const n = r.int(5);
  for (let i = 0; i < n; i++) {
    const k = r.int(9);
    if (k === 0) out.push(2, 4, r.int(256), r.int(256));
    else if (k === 1) out.push(3, 3, r.pick([0, 2, 7, 14, 15, 255]));
    else if (k === 2) out.push(4, 2);
    else if (k === 3) {
      const blocks = 1 + r.int(4);
      out.push(5, 2 + blocks * 8);
      for (let b = 0; b < blocks; b++) {
        const left = (near + r.int(200_000) - 100_000) >>> 0;
        const right = (left + r.pick([0, 1, 1460, 65536, 2 ** 31])) >>> 0;
        for (const v of [left, right]) out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
      }
    } else if (k === 4) out.push(8, 10, ...bytes(r, 8));
    else if (k === 5) out.push(1);
    else if (k === 6) out.push(0);
    else if (k === 7) out.push(r.int(256), r.pick([0, 1, 2, 40, 255]));
    else out.push(...bytes(r, 1 + r.int(6)));
  }
  while (out.length % 4) out.push(1);
  return Uint8Array.from(out.slice(0, 40));
}

/**
 * A source port for a forged SYN the host never uses (its lwIP picks from 49152 up). A SYN from a
 * port of the host's earlier connection meets that connection's TIME_WAIT pcb, which answers the
 * guest's SYN-ACK with an ACK instead of a reset: the guest's half-open pcb then lives until its
 * SYN-ACK retries run out (lwIP's TCP_SYNMAXRTX), seconds after the case ends: not a leak.
 */
function forgedPort(r: Rng): number {
  return 1024 + r.int(40_000);
}

function synPort(frame: Uint8Array, tcpAt: number, r: Rng): void {
  const p = forgedPort(r);
  frame[tcpAt] = p >> 8;
  frame[tcpAt + 1] = p & 0xff;
}

interface Session {
  /** Frames the host sent the guest in this run so far (captured by the vif). */
  rx: Uint8Array[];
  /** The live connection's sequence numbers, roughly (for plausible junk). */
  seq: number;
  ack: number;
  sport: number;
}

/** One junk frame to the guest; `frag` says it was an IP fragment (reassembly may hold pool pbufs). */
function junk(r: Rng, s: Session): { frame: Uint8Array; kind: string; frag: boolean } {
  const dst = r.next() < 0.9 ? GUEST : r.pick([F.BROADCAST, bytes(r, 6)]);
  const kind = r.pick(["random", "arp", "ip", "icmp", "udp", "tcp", "tcp", "fragment", "mutate", "mutate", "mutate"] as const);
  let frame: Uint8Array;
  let frag = false;
  const src = r.next() < 0.9 ? HOST_IP : `10.0.0.${r.pick([0, 1, 2, 3, 255])}`;
  if (kind === "random") {
    frame = F.ethernet(dst, HOST_MAC, r.pick([0x0800, 0x0806, 0x86dd, 0x8100, r.int(65536)]), bytes(r, r.int(1500)));
  } else if (kind === "arp") {
    const arp = Uint8Array.of(0, r.pick([1, 1, 6]), 8, 0, r.pick([6, 6, 0, 16]), r.pick([4, 4, 16]), 0, r.pick([1, 2, 3, 0]));
    const body = [
      arp,
      r.next() < 0.5 ? HOST_MAC : bytes(r, 6),
      F.ip4(r.next() < 0.8 ? HOST_IP : src),
      bytes(r, 6),
      F.ip4(r.next() < 0.7 ? GUEST_IP : "10.0.0.9"),
    ];
    let p = Uint8Array.from(body.flatMap((b) => [...b]));
    if (r.next() < 0.3) p = p.subarray(0, r.int(p.length));
    // (One naming the host with another MAC poisons the guest's cache: the final check's ARP request repairs it.)
    frame = F.ethernet(dst, HOST_MAC, F.ETH_ARP, p);
  } else if (kind === "mutate" && s.rx.length) {
    frame = r.pick(s.rx).slice();
    const n = 1 + r.int(4);
    for (let i = 0; i < n; i++) {
      const m = r.int(6);
      if (m === 0 && frame.length > 14) frame[14 + r.int(frame.length - 14)] ^= 1 << r.int(8);
      else if (m === 1 && frame.length > 14) frame[14 + r.int(Math.min(60, frame.length - 14))] = r.int(256);
      else if (m === 2) frame = frame.slice(0, 14 + r.int(Math.max(1, frame.length - 13)));
      else if (m === 3) frame = Uint8Array.from([...frame, ...bytes(r, r.int(100))]).slice(0, 1514);
      else if (m === 4 && frame.length >= 54) {
        // A TCP field: sequence, acknowledgement, flags, window, data offset.
        const at = r.pick([38, 42, 47, 48, 46]);
        frame[at] = r.int(256);
      } else if (frame.length >= 34) frame[16 + r.int(2)] = r.int(256); // IP total length
    }
    if (r.next() < 0.7) {
      // TCP from anyone but the host would leave a half-open pcb waiting for an ARP answer (not a leak).
      if (frame.length >= 34 && frame[23] === F.IP_TCP) (frame.set(F.ip4(HOST_IP), 26), frame.set(F.ip4(GUEST_IP), 30));
      const t = 14 + (frame[14] & 15) * 4;
      if (frame.length >= t + 14 && frame[23] === F.IP_TCP && frame[t + 13] & F.TCP_SYN) synPort(frame, t, r);
      repairChecksums(frame);
    }
  } else {
    let proto: number;
    let payload: Uint8Array;
    if (kind === "icmp") {
      proto = F.IP_ICMP;
      payload = F.icmpEcho(r.int(65536), r.int(65536), bytes(r, r.int(1400)));
      payload[0] = r.pick([8, 8, 0, 3, 5, 11, 13, 255]);
    } else if (kind === "udp" || kind === "fragment") {
      proto = F.IP_UDP;
      payload = F.udp(
        src,
        GUEST_IP,
        r.int(65536),
        r.pick([7, 7, 53, 67, 68, r.int(65536)]),
        bytes(r, r.int(kind === "fragment" ? 3000 : 1400)),
      );
      if (r.next() < 0.2) payload[4 + r.int(2)] = r.int(256); // the UDP length
    } else if (kind === "tcp") {
      proto = F.IP_TCP;
      const live = r.next() < 0.5;
      const flags = r.pick([0x02, 0x12, 0x10, 0x18, 0x04, 0x14, 0x01, 0x11, 0x3f, 0x00, 0x29, r.int(256)]);
      const seq = live ? (s.seq + r.pick([0, 1, -1, 1460, -65536, 65536, 2 ** 30, r.int(2 ** 32)])) >>> 0 : r.int(2 ** 32);
      const ack = live ? (s.ack + r.pick([0, 1, -1, 100_000, -100_000, r.int(2 ** 32)])) >>> 0 : r.int(2 ** 32);
      payload = F.tcp(
        HOST_IP,
        GUEST_IP,
        flags & F.TCP_SYN ? forgedPort(r) : live ? s.sport : r.int(65536),
        r.pick([7, 7, 7, 80, r.int(65536)]),
        seq,
        ack,
        flags,
        r.pick([0, 1, 65535, r.int(65536)]),
        tcpOptions(r, s.ack),
        bytes(r, r.pick([0, 0, 1, 100, 1400])),
      );
    } else {
      proto = r.pick([0, 2, 4, 41, 47, 50, 132, 255]);
      payload = bytes(r, r.int(1400));
    }
    let ip = F.ipv4(proto === F.IP_TCP ? HOST_IP : src, GUEST_IP, proto, payload, r.int(65536));
    const m = r.int(8);
    if (kind === "fragment" || m === 0) {
      // An IP fragment: a piece at an offset, more-fragments or not, maybe overlapping, maybe past 64 KiB.
      frag = true;
      const off = r.pick([0, 0, 1, 8, 185, 8191]);
      const len = Math.min(ip.length - 20, 8 * (1 + r.int(180)));
      const piece = ip.slice(20 + Math.min(off * 8, ip.length - 20 - len), 20 + Math.min(off * 8, ip.length - 20 - len) + len);
      const h = ip.slice(0, 20);
      const v = new DataView(h.buffer);
      v.setUint16(2, 20 + piece.length);
      v.setUint16(6, (r.next() < 0.7 ? 0x2000 : 0) | off);
      v.setUint16(4, 0x4242 + r.int(3)); // a few ids, so pieces meet
      ip = Uint8Array.from([...h, ...piece]);
    } else if (m === 1)
      ip[0] = r.pick([0x46, 0x4f, 0x44, 0x55, 0x60]); // IHL / version: options or nonsense
    else if (m === 2) new DataView(ip.buffer).setUint16(2, r.pick([0, 19, 20, ip.length + 1, 65535]));
    else if (m === 3) ip[8] = r.pick([0, 1]); // TTL
    frame = F.ethernet(dst, HOST_MAC, F.ETH_IP, ip);
    if (m !== 4) repairChecksums(frame);
    if (m === 1 && ip[0] === 0x46) frame = Uint8Array.from([...frame.subarray(0, 34), 1, 1, 1, 0, ...frame.subarray(34)]).slice(0, 1514);
  }
  return { frame: frame!, kind, frag };
}

export function framesCase(seed: number): CaseResult {
  const r = rng(seed);
  const count = 20 + r.int(180);
  const base = { target: "frames" as const, seed };
  let dom!: Domain;
  const host = new LwipHost({
    // The final ping's reply: taken here (the host's lwIP would only drop it).
    intercept: (f) => {
      if (f.length < 42 || ((f[12] << 8) | f[13]) !== 0x0800 || f[23] !== F.IP_ICMP) return false;
      const icmp = f.subarray(14 + (f[14] & 15) * 4);
      if (icmp[0] === 0 && ((icmp[4] << 8) | icmp[5]) === PING_ID) pinged = true;
      return true;
    },
  });
  let pinged = false;
  let aDone = false;
  let conn!: HostConn;
  let echoed = false;
  let frags = 0;
  const kinds = new Map<string, number>();
  let port!: WirePort;
  let ready = false;
  let consoleText = "";
  const session: Session = { rx: [], seq: 0, ack: 0, sport: 0 };
  const data = bytes(r, 16_384);
  const start = () => {
    port.after(30_000, () => stop()); // a watchdog: the guest never answered
    // A valid session first (its frames are the mutations' material), then the junk while it goes on.
    const a = host.connect(GUEST_IP, 7);
    let got = 0;
    a.onConnect = () => a.write(data.subarray(0, 8192));
    a.onData = (d) => {
      got += d.length;
      if (got === 8192 && !session.sport) junkStorm(a);
      if (got >= data.length) a.shutdown();
    };
    a.onEof = () => {
      a.close();
      aDone = true;
    };
    a.onError = () => void (aDone = true);
    conn = a;
  };
  const junkStorm = (a: HostConn) => {
    const v = dom.vifs[0];
    session.rx = v.capture.filter((c) => c.dir === "rx").map((c) => c.frame);
    session.sport = host.ex.morgana_lwip_tcp_local_port(a.pcb);
    const last = session.rx[session.rx.length - 1];
    if (last && last.length >= 54) {
      const dv = new DataView(last.buffer, last.byteOffset);
      session.seq = dv.getUint32(38);
      session.ack = dv.getUint32(42);
    }
    a.write(data.subarray(8192));
    let t = 0;
    for (let i = 0; i < count; i++) {
      const j = junk(r, session);
      kinds.set(j.kind, (kinds.get(j.kind) ?? 0) + 1);
      if (j.frag) frags++;
      t += r.pick([0, 0, 0, 1, 2]);
      port.after(t, () => port.send(j.frame));
    }
    port.after(t + 50, finalCheck);
  };
  const finalCheck = () => {
    // The host's ARP request first: it puts the host's true MAC back in the guest's cache.
    port.send(F.arpRequest(HOST_MAC, HOST_IP, GUEST_IP));
    port.after(5, () => {
      const ping = F.ipv4(HOST_IP, GUEST_IP, F.IP_ICMP, F.icmpEcho(PING_ID, 1, new TextEncoder().encode("after the junk")));
      port.send(F.ethernet(GUEST, HOST_MAC, F.ETH_IP, ping));
      const b = host.connect(GUEST_IP, 7);
      const msg = bytes(r, 1000);
      const back: number[] = [];
      b.onConnect = () => b.write(msg);
      b.onData = (d) => {
        back.push(...d);
        if (back.length >= msg.length) b.shutdown();
      };
      b.onEof = () => {
        echoed = back.length === msg.length && back.every((x, i) => x === msg[i]);
        b.close();
        end();
      };
      b.onError = () => end();
    });
  };
  // The first connection may still run (or be stuck: junk that hit its sequence space desynchronises
  // it, as on any network); given 2 s, then reset by the host, so the guest's pcb and flow go.
  const end = (waited = 0): void => {
    if (aDone || waited >= 2000) {
      if (!aDone) conn.abort();
      port.after(300, stop);
    } else port.after(20, () => end(waited + 20));
  };
  const stop = () => dom.xenstored.write(`/local/domain/${dom.domid}/control/shutdown`, "poweroff");
  const peer: Peer = {
    start: (p) => {
      port = p;
      host.start(p);
    },
    receive: (f, p) => host.receive(f, p),
  };
  const run = runWasm({
    wasm: wasmPath("echo"),
    cmdline: `ip=${GUEST_IP}/24 gw=${HOST_IP}`,
    onConsole: (b) => {
      consoleText += new TextDecoder().decode(b);
      if (!ready && port && /echoing TCP and UDP/.test(consoleText)) {
        ready = true;
        port.after(1, start);
      }
    },
    vifs: [{ wire: peer }],
    setup: (d) => void (dom = d),
  });
  const what = `echo; ${count} junk frames (${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}) during a 16 KiB echo`;
  // echo prints no result line: a run that powered off with its summary ended well.
  const c = run.trap || run.outcome !== "poweroff" ? classify(run, /^$/) : undefined;
  if (c && (c.verdict === "trap" || c.verdict === "hang")) return { ...base, what, ...c };
  if (!pinged || !echoed)
    return {
      ...base,
      what,
      verdict: "hang",
      detail: `after the junk the guest ${pinged ? "answered the ping but" : "did not answer the ping and"} ${echoed ? "echoed" : "did not echo"} a fresh connection: ${c?.detail ?? run.detail}`,
    };
  const m =
    /^echo: poweroff: \d+ connections, \d+ bytes over TCP, \d+ datagrams over UDP, \d+ errors; held: (\d+) flows, (\d+) pbufs, (\d+) tcp pcbs, (\d+) pool pbufs$/m.exec(
      run.console,
    );
  if (!m) return { ...base, what, verdict: "clear-error", detail: c?.detail ?? run.detail };
  const [flows, pbufs, pcbs, pool] = m.slice(1).map(Number);
  // Reassembly may still hold fragments (lwIP drops them after IP_REASS_MAXAGE); nothing else may stay.
  if (flows || pbufs || pcbs || pool > (frags ? IP_REASS_MAX_PBUFS : 0))
    return { ...base, what, verdict: "leak", detail: `${m[0]} (${frags} fragments sent)` };
  // (echo powers off without closing its device: its grants are still out, by design; netif checks grants.)
  return { ...base, what, verdict: "ok", detail: m[0] };
}
