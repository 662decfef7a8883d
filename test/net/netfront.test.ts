// The network device in the guest (runtime/net) against the harness's netback
// (tools/harness/netback.ts, modelled on Linux's xen-netback) and a scripted
// peer on its wire: the handshake (one transaction, mac and mtu from the
// toolstack, the netif features), every refusal with its exact error, 1,000
// pings answered by the nettest app with none lost, frames of 14 to 65535 bytes
// both ways (multi-slot, never a TX slot across a page), csum_blank frames, a
// backend that answers with hostile responses, a wire that drops, duplicates,
// reorders, corrupts and delays, RX starvation — and after each run every page
// and grant back. Then netback on its own, driven by a hand-written frontend
// that sends what netfront never would. A failing test leaves its traffic in
// build/pcap/<test>.pcap.
import { describe, expect, onTestFailed, test } from "vitest";
import { join } from "node:path";
import { runWasm } from "../../tools/harness/run.ts";
import { Domain } from "../../tools/harness/domain.ts";
import {
  DOM0_MAC,
  NETIF_RSP,
  NETRXF,
  NETTXF,
  Peer,
  transportChecksumOk,
  VifBackend,
  VifOptions,
  WirePort,
} from "../../tools/harness/netback.ts";
import { pcapBytes, writePcap } from "../../tools/harness/pcap.ts";
import { BUILD_DIR, wasmPath } from "../../tools/lib/paths.ts";
import * as F from "./frames.ts";

const FE = "/local/domain/1/device/vif/0";
const BE = "/local/domain/0/backend/vif/1/0";
const GUEST_IP = "10.0.0.2";
const PEER_IP = "10.0.0.1";
const ETH_TEST = 0x88b5;

/** Runs nettest with one vif; a failing test writes the wire's capture to build/pcap/. */
function nettest(cmdline: string, vif: VifOptions = {}) {
  const r = runWasm({ wasm: wasmPath("nettest"), cmdline, vifs: [vif] });
  const v = r.domain.vifs[0];
  onTestFailed(() => {
    const name = (expect.getState().currentTestName ?? "netfront").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120);
    const path = writePcap(join(BUILD_DIR, "pcap", `${name}.pcap`), v.capture);
    console.log(`the wire's ${v.capture.length} frames: ${path}\n${r.console}`);
  });
  const lines = r.console.trimEnd().split("\n");
  return { r, lines, vif: v, result: lines[lines.length - 1], failures: lines.filter((l) => l.startsWith("not ok")) };
}

/** The run ended by itself, with no trap, hang or crash, and gave every grant back. */
function clean(r: ReturnType<typeof nettest>["r"]) {
  expect(r.outcome).toBe("poweroff");
  expect(r.console).not.toMatch(/TRAP|HANG|FATAL|abort/);
  expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
}

const stopFrame = (dst: Uint8Array) => F.ethernet(dst, DOM0_MAC, ETH_TEST, new TextEncoder().encode("stop"));

/**
 * dom0's side of a ping: ARP for the guest, then `count` ICMP echo requests one
 * after the other, each resent after `timeoutMs` until answered; then the stop
 * frame. Replies are checked (checksums, id, sequence, data).
 */
class PingPeer implements Peer {
  replies = 0;
  sent = 0;
  retransmits = 0;
  duplicates = 0;
  badReplies = 0;
  arpReplies = 0;
  guestMac?: Uint8Array;
  private seq = 0;
  private port!: WirePort;
  constructor(
    readonly count: number,
    readonly opts: { timeoutMs?: number; size?: number } = {},
  ) {}

  start(port: WirePort): void {
    this.port = port;
    this.arp();
  }

  private arp(): void {
    if (this.guestMac) return;
    this.port.send(F.arpRequest(DOM0_MAC, PEER_IP, GUEST_IP));
    this.port.after(this.opts.timeoutMs ?? 100, () => this.arp());
  }

  private payload(seq: number): Uint8Array {
    return Uint8Array.from({ length: this.opts.size ?? 56 }, (_, i) => (i + seq) & 0xff);
  }

  private ping(seq: number): void {
    if (this.seq !== seq) return; // answered meanwhile
    this.sent++;
    const ip = F.ipv4(PEER_IP, GUEST_IP, F.IP_ICMP, F.icmpEcho(0x4d4f, seq, this.payload(seq)), seq);
    this.port.send(F.ethernet(this.guestMac!, DOM0_MAC, F.ETH_IP, ip));
    this.port.after(this.opts.timeoutMs ?? 100, () => {
      if (this.seq !== seq) return;
      this.retransmits++;
      this.ping(seq);
    });
  }

  private next(): void {
    if (this.replies === this.count) {
      // The stop frame, a few times in case the wire loses it (the guest stops at the first).
      for (let i = 0; i < 3; i++) this.port.after(i * 30, () => this.port.send(stopFrame(this.guestMac!)));
      this.seq = -1;
      return;
    }
    this.seq++;
    this.ping(this.seq);
  }

  receive(frame: Uint8Array): void {
    const e = F.parseEthernet(frame);
    if (e.type === F.ETH_ARP && frame.length >= 42 && frame[21] === 2) {
      this.arpReplies++;
      if (!this.guestMac) {
        this.guestMac = frame.slice(22, 28);
        this.next();
      }
      return;
    }
    if (e.type !== F.ETH_IP) return;
    const ip = F.parseIpv4(e.payload);
    const icmp = ip.payload;
    if (!ip.headerOk || ip.proto !== F.IP_ICMP || icmp[0] !== 0 || F.checksum(icmp) !== 0) return void this.badReplies++;
    const seq = (icmp[6] << 8) | icmp[7];
    const want = this.payload(seq);
    if (((icmp[4] << 8) | icmp[5]) !== 0x4d4f || icmp.length !== 8 + want.length || !want.every((b, i) => icmp[8 + i] === b))
      return void this.badReplies++;
    if (seq !== this.seq) return void this.duplicates++;
    this.replies++;
    this.next();
  }
}

/** Echoes every test frame (EtherType 0x88b5) back with the addresses swapped. */
class EchoPeer implements Peer {
  frames: number[] = [];
  receive(frame: Uint8Array): Uint8Array[] {
    if (((frame[12] << 8) | frame[13]) !== ETH_TEST) return [];
    this.frames.push(frame.length);
    const r = frame.slice();
    r.set(frame.subarray(6, 12), 0);
    r.set(DOM0_MAC, 6);
    return [r];
  }
}

/** Sends `count` UDP datagrams to the guest's port 7 (dom0's stack with checksum offload when csumBlank), checks the echoes. */
class UdpPeer implements Peer {
  echoes = 0;
  badChecksums = 0;
  private port!: WirePort;
  private guestMac?: Uint8Array;
  constructor(
    readonly count: number,
    readonly csumBlank: boolean,
  ) {}
  start(port: WirePort): void {
    this.port = port;
    port.send(F.arpRequest(DOM0_MAC, PEER_IP, GUEST_IP));
  }
  private datagram(i: number): Uint8Array {
    const data = Uint8Array.from({ length: 100 + i }, (_, k) => (k * 7 + i) & 0xff);
    return F.ethernet(
      this.guestMac!,
      DOM0_MAC,
      F.ETH_IP,
      F.ipv4(PEER_IP, GUEST_IP, F.IP_UDP, F.udp(PEER_IP, GUEST_IP, 5000 + i, 7, data), i),
    );
  }
  receive(frame: Uint8Array): void {
    if (frame[12] === 0x08 && frame[13] === 0x06 && !this.guestMac) {
      this.guestMac = frame.slice(22, 28);
      for (let i = 0; i < this.count; i++) this.port.send(this.datagram(i), { csumBlank: this.csumBlank });
      this.port.after(50, () => this.port.send(stopFrame(this.guestMac!)));
      return;
    }
    const e = F.parseEthernet(frame);
    if (e.type !== F.ETH_IP) return;
    const ip = F.parseIpv4(e.payload);
    if (ip.proto !== F.IP_UDP) return;
    const u = F.parseUdp(ip);
    if (!u.checksumOk || !transportChecksumOk(frame)) this.badChecksums++;
    else this.echoes++;
  }
}

describe("handshake (io/netif.h over xenbus)", () => {
  test("keys in one transaction with state Connected, all RX buffers posted first, mac and mtu from the toolstack", () => {
    const writes: { path: string; tx: number }[] = [];
    const r = runWasm({
      wasm: wasmPath("nettest"),
      cmdline: "info",
      vifs: [{ mac: "00:16:3E:AB:cd:09", mtu: 1500 }],
      setup: (dom) => {
        dom.xenstored.hooks.beforeRequest = (req) => {
          if (req.type !== 11) return; // XS_WRITE
          const p = Buffer.from(req.payload).toString("latin1");
          writes.push({ path: p.slice(0, p.indexOf("\0")), tx: req.txId });
        };
      },
    });
    const lines = r.console.trimEnd().split("\n");
    expect(lines[0]).toBe(`info: mac=00:16:3e:ab:cd:09 mtu=1500 sg=1 tx-slots=256 rx-slots=256 backend=${BE}`);
    expect(lines[lines.length - 1]).toBe("TEST PASS");
    const keys = ["tx-ring-ref", "rx-ring-ref", "event-channel", "request-rx-copy", "feature-rx-notify", "feature-sg"];
    const inTx = writes.filter((w) => w.tx !== 0);
    expect(new Set(inTx.map((w) => w.tx)).size).toBe(1);
    expect(inTx.map((w) => w.path.replace("device/vif/0/", ""))).toEqual([...keys, "state"]);
    const vif = r.domain.vifs[0];
    expect(vif.sawInitialised).toBe(0); // straight to Connected: xen-netback ignores Initialised
    expect(vif.rxNotify).toBe(true);
    expect(vif.frontendSg).toBe(true);
    expect(vif.rxPostedAtConnect).toBe(256);
    expect(vif.earlyTx).toBe(0);
    expect(vif.errors).toEqual([]);
    expect(vif.state()).toBe(6);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("without an mtu key (toolstacks before Xen 4.15) the MTU is 1500; a jumbo MTU is taken with feature-sg", () => {
    expect(nettest("info", { mtu: null }).lines[0]).toMatch(/ mtu=1500 sg=1 /);
    expect(nettest("info", { mtu: 9000 }).lines[0]).toMatch(/ mtu=9000 sg=1 /);
    expect(nettest("info", { keys: { "feature-sg": undefined } }).lines[0]).toMatch(/ mtu=1500 sg=0 /);
  });

  test.each([
    [
      { frontendKeys: { mac: undefined } },
      `vif 0: the toolstack wrote no mac key in device/vif/0 — was the vif made by xl (a vif line in the xl config)?`,
    ],
    [
      { mac: "zz:16:3e:00:00:01" },
      'vif 0: frontend key mac = "zz:16:3e:00:00:01" is not a MAC address (six hex pairs like 00:16:3e:12:34:56)',
    ],
    [{ mac: "00:16:3e:00:00" }, 'vif 0: frontend key mac = "00:16:3e:00:00" is not a MAC address (six hex pairs like 00:16:3e:12:34:56)'],
    [
      { mac: "00-16-3e-00-00-01" },
      'vif 0: frontend key mac = "00-16-3e-00-00-01" is not a MAC address (six hex pairs like 00:16:3e:12:34:56)',
    ],
    [{ mac: "01:00:5e:00:00:01" }, 'vif 0: frontend key mac = "01:00:5e:00:00:01" is a multicast address, not an interface\'s'],
    [{ mac: "00:00:00:00:00:00" }, 'vif 0: frontend key mac = "00:00:00:00:00:00" is all zeros, not an interface\'s'],
    [{ mtu: 40 }, 'vif 0: frontend key mtu = "40" is not an MTU from 68 to 65521'],
    [{ frontendKeys: { mtu: "1500x" } }, 'vif 0: frontend key mtu = "1500x" is not an MTU from 68 to 65521'],
    [{ frontendKeys: { mtu: "-1" } }, 'vif 0: frontend key mtu = "-1" is not an MTU from 68 to 65521'],
    [{ frontendKeys: { "backend-id": "x" } }, 'vif 0: frontend key backend-id = "x" is not a domain id'],
    [
      { keys: { "feature-rx-copy": undefined } },
      "vif 0: the backend offers no feature-rx-copy: netfront receives by copy only (request-rx-copy); check the backend domain's netback",
    ],
    [
      { keys: { "feature-rx-copy": "0" } },
      'vif 0: backend key feature-rx-copy = "0" is not 1: netfront receives by copy only (request-rx-copy)',
    ],
    [{ keys: { "feature-sg": "2" } }, 'vif 0: backend key feature-sg = "2" is neither 0 nor 1'],
    [
      { mtu: 9000, keys: { "feature-sg": "0" } },
      'vif 0: frontend key mtu = "9000" needs frames of 9014 bytes, over one page, but the backend offers no feature-sg',
    ],
  ] as [VifOptions, string][])("refused: %j", (vif, msg) => {
    const { r, lines, vif: v } = nettest("info", vif);
    expect(lines).toEqual([`open: ${msg}`, "FAIL: no checks ran"]);
    clean(r);
    // Nothing was published: refused before the transaction, or before the rings existed.
    expect(r.domain.xenstored.read(`${FE}/tx-ring-ref`)).toBeUndefined();
    expect(v.connected).toBe(false);
  });

  test("no vif at all: a clear error naming the xl config line", () => {
    const r = runWasm({ wasm: wasmPath("nettest"), cmdline: "info" });
    expect(r.console).toBe("open: net: no network interface — is there a vif line in the xl config?\nFAIL: no checks ran\n");
  });

  test("a backend that refuses our frontend (no request-rx-copy, as xen-netback's read_xenbus_vif_flags) goes Closing: a clear error", () => {
    const r = runWasm({
      wasm: wasmPath("nettest"),
      cmdline: "info 2000",
      vifs: [{}],
      setup: (dom) => {
        // A frontend that does not ask for the copying receive path (rewritten on its way to xenstored).
        dom.xenstored.hooks.beforeRequest = (req) => {
          const p = Buffer.from(req.payload).toString("latin1");
          if (req.type === 11 && p.startsWith("device/vif/0/request-rx-copy\0"))
            req.payload = new TextEncoder().encode("device/vif/0/request-rx-copy\x000");
        };
      },
    });
    const v = r.domain.vifs[0];
    expect(v.errors).toEqual([`${FE}/request-rx-copy is "0": this backend only copies into the frontend's buffers (EOPNOTSUPP)`]);
    expect(r.console.split("\n")[0]).toBe(`open: device/vif/0: the backend ${BE} is closing (state 5)`);
    clean(r);
  });

  test("backend states: never InitWait, never Connected, a state that is no XenbusState", () => {
    const a = nettest("info 300", { xenbus: { stayInitialising: true } });
    expect(a.lines[0]).toBe(
      `open: device/vif/0: the backend ${BE} did not reach InitWait in 300 ms, it is Initialising (state 1): check that the backend domain runs xen-netback, and read its kernel log`,
    );
    clean(a.r);
    const b = nettest("info 300", { xenbus: { neverConnect: true } });
    expect(b.lines[0]).toBe(
      `open: device/vif/0: the backend ${BE} did not reach Connected in 300 ms, it is InitWait (state 2): it may have refused our ring; read the backend domain's kernel log`,
    );
    clean(b.r);
    const c = nettest("info 300", { xenbus: { connectedState: "9" } });
    expect(c.lines[0]).toBe(`open: device/vif/0: backend key ${BE}/state = "9" is not a XenbusState (1 to 6); the device is refused`);
    clean(c.r);
  });
});

describe("traffic through the scripted peer", () => {
  test("1,000 pings, 0 lost: ARP and ICMP echo answered by the guest", () => {
    const peer = new PingPeer(1000);
    const { r, lines, vif, result, failures } = nettest("serve 10.0.0.2 5000", { wire: peer });
    expect(failures).toEqual([]);
    expect(result).toBe("TEST PASS");
    expect(lines[0]).toMatch(/^served: arp=1 echo=1000 udp=0 csum-blank=0 bad=0 other=0 rx=100[234] tx=1001 rx-errors=0 send-errors=0$/);
    expect(peer.replies).toBe(1000);
    expect(peer.retransmits).toBe(0);
    expect(peer.badReplies).toBe(0);
    expect(vif.errors).toEqual([]);
    expect(vif.disabled).toBe(false);
    clean(r);
  });

  test("frames of 14 to 65535 bytes both ways: multi-slot, never a TX slot across a page", () => {
    const peer = new EchoPeer();
    const sizes = [14, 15, 60, 1514, 4095, 4096, 4097, 8192, 8193, 9014, 16384, 40000, 65534, 65535];
    const { r, result, failures, vif } = nettest(`sizes ${sizes.join(" ")}`, { wire: peer });
    expect(failures).toEqual([]);
    expect(result).toBe("TEST PASS");
    expect(peer.frames).toEqual(sizes);
    const slots = sizes.reduce((n, s) => n + Math.ceil(s / 4096), 0);
    expect(vif.txSlots).toBe(slots); // one slot per started page: each at offset 0, none across a page
    expect(vif.rxSlots).toBe(slots);
    expect(vif.errors).toEqual([]);
    expect(vif.disabled).toBe(false);
    clean(r);
  });

  test("a sweep of sizes 14..65535 (step 1021) both ways", () => {
    const peer = new EchoPeer();
    const { r, result, failures, vif } = nettest("sweep 14 65535 1021", { wire: peer });
    expect(failures).toEqual([]);
    expect(result).toBe("TEST PASS");
    expect(peer.frames.length).toBe(Math.floor((65535 - 14) / 1021) + 1);
    expect(vif.errors).toEqual([]);
    clean(r);
  });

  test("RX frames with csum_blank (dom0's stack with checksum offload) are accepted, filled and echoed", () => {
    const peer = new UdpPeer(50, true);
    const { r, lines, result, vif } = nettest("serve 10.0.0.2 5000", { wire: peer });
    expect(result).toBe("TEST PASS");
    expect(lines[0]).toMatch(/^served: arp=1 echo=0 udp=50 csum-blank=50 bad=0 /);
    expect(peer.echoes).toBe(50);
    expect(peer.badChecksums).toBe(0);
    // The frames really went in blank: their checksum fields held the pseudo-header sum only.
    const rx = vif.capture.filter((c) => c.dir === "rx" && c.frame[23] === F.IP_UDP);
    expect(rx.length).toBe(50);
    expect(rx.every((c) => !transportChecksumOk(c.frame))).toBe(true);
    clean(r);
  });

  test("TX with NETTXF_csum_blank: the backend completes the checksum the guest left as the pseudo-header sum", () => {
    const peer = new UdpPeer(20, false);
    const { r, lines, result, vif } = nettest("serve 10.0.0.2 5000 offload", { wire: peer });
    expect(result).toBe("TEST PASS");
    expect(lines[0]).toMatch(/^served: arp=1 echo=0 udp=20 csum-blank=0 bad=0 /);
    expect(peer.echoes).toBe(20);
    expect(peer.badChecksums).toBe(0);
    expect(vif.errors).toEqual([]);
    clean(r);
  });

  test("back-pressure: 3,000 frames sent as fast as the ring takes them, all answered", () => {
    let got = 0;
    const { r, lines, result, failures, vif } = nettest("blast 3000 1514", { wire: () => void got++ });
    expect(failures).toEqual([]);
    expect(result).toBe("TEST PASS");
    expect(lines[0]).toMatch(/^blast: sent=3000 ok=3000 max-queued=\d+$/);
    expect(Number(/max-queued=(\d+)/.exec(lines[0])![1])).toBeGreaterThan(0); // the ring filled up
    expect(got).toBe(3000);
    expect(vif.errors).toEqual([]);
    clean(r);
  });
});

describe("a hostile backend: every bad response gets its exact error, and nothing traps or hangs", () => {
  // The ping flow: RX response n is the n-th frame to the guest (0: the ARP request), TX response n
  // the n-th answer from it; one frame in flight at a time, so every TX frame uses slot id 0.
  test.each([
    [
      "a TX response id out of range",
      { mangleTx: (r, n) => void (n === 5 && (r.id = 999)) },
      "TX response id 999 is out of range (the TX ring has 256 slots)",
    ],
    [
      "a TX response naming a slot with no frame",
      { mangleTx: (r, n) => void (n === 5 && (r.id = 7)) },
      "TX response id 7 names no frame in flight",
    ],
    [
      "a TX response given twice (more answers than requests)",
      { duplicateTx: 5 },
      "the backend published more TX responses than TX requests (rsp_prod is corrupt)",
    ],
    [
      "a TX status that is no NETIF_RSP_*",
      { mangleTx: (r, n) => void (n === 5 && (r.status = 7)) },
      "TX response id 0 has status 7, which is no NETIF_RSP_* value",
    ],
    [
      "NETIF_RSP_NULL for a data slot",
      { mangleTx: (r, n) => void (n === 5 && (r.status = NETIF_RSP.null)) },
      "TX response id 0 has status 1 (NETIF_RSP_NULL), which answers extra-info slots, and we send none",
    ],
    [
      "an RX response id out of range",
      { mangleRx: (r, n) => void (n === 5 && (r.id = 300)) },
      "RX response id 300 is out of range (the RX ring has 256 slots)",
    ],
    [
      "an RX response in another request's slot",
      { mangleRx: (r, n) => void (n === 5 && (r.id = 6)) },
      "RX response id 6 is in slot 5: netif.h puts each response in its request's slot",
    ],
    [
      "an RX offset past the page",
      { mangleRx: (r, n) => void (n === 5 && (r.offset = 4000)) },
      "RX response id 5: offset 4000 + size 98 runs past the end of its 4096-byte page",
    ],
    [
      "an RX size past the page",
      { mangleRx: (r, n) => void (n === 5 && (r.status = 5000)) },
      "RX response id 5: offset 0 + size 5000 runs past the end of its 4096-byte page",
    ],
    [
      "RX extra-info never negotiated",
      { mangleRx: (r, n) => void (n === 5 && (r.flags |= NETRXF.extraInfo)) },
      "RX response id 5 announces extra-info slots, which we never asked for (no GSO, no XDP headroom)",
    ],
    [
      "an RX response with no request",
      { extraRx: 5 },
      "the backend published more RX responses than receive buffers posted (rsp_prod is corrupt)",
    ],
    [
      "an RX frame over 65535 bytes (more_data for ever)",
      { mangleRx: (r, n) => void (n >= 5 && ((r.flags |= NETRXF.moreData), (r.status = 4096))) },
      "an RX frame is longer than 65535 bytes (XEN_NETIF_MAX_TX_SIZE), at response id 20",
    ],
  ] as [string, VifOptions["faults"], string][])("%s", (_, faults, why) => {
    const peer = new PingPeer(20, { timeoutMs: 30 });
    const { r, lines, result, vif } = nettest("serve 10.0.0.2 1000", { wire: peer, faults });
    expect(lines.slice(1)).toEqual([
      "ok 1 orderly disconnect",
      "ok 2 I/O pages back to their count before open",
      `device: vif 0: ${why}`,
      "not ok 3 the device kept working",
      "FAIL: 1 of 3 checks failed",
    ]);
    expect(result).toBe("FAIL: 1 of 3 checks failed");
    expect(vif.errors).toEqual([]);
    expect(vif.state()).toBe(6);
    clean(r);
  });

  test("a negative RX status (NETIF_RSP_ERROR, or a failed grant copy's GNTST_*) drops that frame only", () => {
    const peer = new PingPeer(20, { timeoutMs: 30 });
    const { r, lines, result } = nettest("serve 10.0.0.2 2000", {
      wire: peer,
      faults: { mangleRx: (x, n) => void (n === 5 && (x.status = -1)) },
    });
    expect(result).toBe("TEST PASS");
    expect(lines[0]).toMatch(/^served: arp=1 echo=20 .* rx-errors=1 send-errors=0$/);
    expect(peer.retransmits).toBe(1); // the dropped request was sent again
    clean(r);
  });

  test("NETIF_RSP_ERROR on a TX frame fails that send only, with the reason", () => {
    const peer = new PingPeer(20, { timeoutMs: 30 });
    const { r, lines } = nettest("serve 10.0.0.2 2000", {
      wire: peer,
      faults: { mangleTx: (x, n) => void (n === 5 && (x.status = NETIF_RSP.error)) },
    });
    expect(lines).toContain(
      'not ok 2 every reply was sent: got "vif 0: a frame of 98 bytes: the backend refused it (NETIF_RSP_ERROR; its kernel log says why)", want ""',
    );
    // The reply went out all the same (only its answer was mangled): nothing was resent.
    expect(lines[0]).toMatch(/^served: arp=1 echo=20 .* send-errors=1$/);
    expect(peer.replies).toBe(20);
    clean(r);
  });

  test("a TX frame never answered: the device fails at its deadline", () => {
    const peer = new PingPeer(20, { timeoutMs: 30 });
    const { r, lines } = nettest("serve 10.0.0.2 2000 plain 300", { wire: peer, faults: { swallowTxFrom: 5 } });
    // The replies went out (only their answers are lost), so the stop came; close() then waits for them.
    expect(lines.slice(1)).toEqual([
      "ok 1 the peer's stop frame arrived (nothing for 2000 ms otherwise)",
      "ok 2 every reply was sent",
      "ok 3 orderly disconnect",
      "ok 4 I/O pages back to their count before open",
      "device: vif 0: a frame of 98 bytes: no response from the backend in 300 ms",
      "not ok 5 the device kept working",
      "FAIL: 1 of 5 checks failed",
    ]);
    clean(r);
  });

  test("the backend leaves Connected: the device fails, naming its state", () => {
    const peer = new PingPeer(20, { timeoutMs: 30 });
    const { r, lines } = nettest("serve 10.0.0.2 2000", { wire: peer, xenbus: { leaveAt: 5 } });
    expect(lines).toContain(`device: vif 0: the backend ${BE} left Connected: it is Closing (state 5)`);
    clean(r);
  });
});

describe("a faulty wire and a starved guest: no hang, nothing lost for good", () => {
  test.each([1, 2, 3])("drop, duplicate, corrupt 1 in 20, reorder 1 in 10, 1 ms delay (seed %i): 200 pings answered", (seed) => {
    const peer = new PingPeer(200, { timeoutMs: 20 });
    const { r, lines, result, vif } = nettest("serve 10.0.0.2 3000", {
      wire: peer,
      wireFaults: { seed, drop: 0.05, duplicate: 0.05, reorder: 0.1, corrupt: 0.05, delayMs: 1 },
    });
    expect(result).toBe("TEST PASS");
    expect(peer.replies).toBe(200);
    expect(peer.retransmits).toBeGreaterThan(0);
    expect(vif.wireDrops).toBeGreaterThan(0);
    expect(lines[0]).toMatch(/^served: arp=\d+ echo=\d+ .* rx-errors=0 send-errors=0$/);
    expect(vif.errors).toEqual([]);
    clean(r);
  });

  test("RX starved for 300 ms: frames wait in the backend, then all arrive", () => {
    const peer = new PingPeer(20, { timeoutMs: 50 });
    const { r, result, vif } = nettest("serve 10.0.0.2 3000", { wire: peer, faults: { rxStarveMs: 300 } });
    expect(result).toBe("TEST PASS");
    expect(peer.replies).toBe(20);
    expect(peer.arpReplies).toBeGreaterThan(1); // the ARP requests resent while starved all arrived at the end
    expect(vif.rxQueueDrops).toBe(0);
    clean(r);
  });

  test("RX starved for good: the guest sees nothing, waits its idle deadline, and closes cleanly", () => {
    const peer = new PingPeer(20, { timeoutMs: 50 });
    const { r, lines, vif } = nettest("serve 10.0.0.2 500", { wire: peer, faults: { rxStarve: true } });
    expect(lines[0]).toMatch(/^served: arp=0 echo=0 udp=0 csum-blank=0 bad=0 other=0 rx=0 tx=0 /);
    expect(lines).toContain("not ok 1 the peer's stop frame arrived (nothing for 500 ms otherwise)");
    expect(lines).toContain("ok 3 orderly disconnect");
    expect(vif.rxSlots).toBe(0);
    expect(vif.rxFrames).toBe(0);
    clean(r);
  });
});

// ---- netback on its own, driven by a frontend written here ----

const TXRING = 0x1000;
const RXRING = 0x2000;
const DATA = 0x10000; // data pages from here

interface Slot {
  gref: number;
  offset?: number;
  flags?: number;
  size: number;
  id?: number;
}

/** A domain with 1 MiB of "guest memory", a vif, and a hand-written netfront connected to it. */
function backend(vif: VifOptions = {}, feKeys: Record<string, string | undefined> = {}) {
  const dom = new Domain({ name: "t" });
  const mem = new ArrayBuffer(1 << 20);
  dom.memory = () => mem;
  const frames: Uint8Array[] = [];
  const v = new VifBackend(dom, 0, { wire: (f) => void frames.push(f), ...vif });
  const dv = new DataView(mem);
  for (const ring of [TXRING, RXRING]) {
    dv.setUint32(ring + 4, 1, true); // SHARED_RING_INIT: indices 0, events 1
    dv.setUint32(ring + 12, 1, true);
  }
  const port = dom.evtchn.allocUnbound(0);
  const keys: Record<string, string | undefined> = {
    "tx-ring-ref": String(dom.gnttab.grantAccess(0, TXRING, 0)),
    "rx-ring-ref": String(dom.gnttab.grantAccess(0, RXRING, 0)),
    "event-channel": String(port),
    "request-rx-copy": "1",
    "feature-rx-notify": "1",
    "feature-sg": "1",
    ...feKeys,
  };
  const xs = dom.xenstored;
  for (const [k, val] of Object.entries(keys)) if (val !== undefined) xs.write(`${FE}/${k}`, val);
  xs.write(`${FE}/state`, "4");
  let txProd = 0;
  let txCons = 0;
  let rxProd = 0;
  /** Data page i at DATA + i * 4096, granted to dom0. */
  const grant = (i: number, readonly = true) => dom.gnttab.grantAccess(0, DATA + i * 4096, readonly ? 1 : 0);
  const page = (i: number) => new Uint8Array(mem, DATA + i * 4096, 4096);
  /** Puts TX requests on the ring (ids from 0 unless given), notifies; returns the new responses as [id, status]. */
  const tx = (slots: Slot[]) => {
    slots.forEach((s, i) => {
      const at = TXRING + 64 + (txProd % 256) * 12;
      dv.setUint32(at, s.gref, true);
      dv.setUint16(at + 4, s.offset ?? 0, true);
      dv.setUint16(at + 6, s.flags ?? (i < slots.length - 1 ? NETTXF.moreData : 0), true);
      dv.setUint16(at + 8, s.id ?? i, true);
      dv.setUint16(at + 10, s.size, true);
      txProd++;
    });
    dv.setUint32(TXRING, txProd, true);
    dom.evtchn.notify(port);
    const out: [number, number][] = [];
    for (const prod = dv.getUint32(TXRING + 8, true); txCons !== prod; txCons++) {
      const at = TXRING + 64 + (txCons % 256) * 12;
      out.push([dv.getUint16(at, true), dv.getInt16(at + 2, true)]);
    }
    return out;
  };
  /** Posts RX requests for data pages (writable grants), ids as given; notifies. */
  const post = (pages: number[], ids = pages.map((p) => p + 100)) => {
    pages.forEach((p, i) => {
      const at = RXRING + 64 + (rxProd % 256) * 8;
      dv.setUint16(at, ids[i], true);
      dv.setUint32(at + 4, grant(p, false), true);
      rxProd++;
    });
    dv.setUint32(RXRING, rxProd, true);
    dom.evtchn.notify(port);
  };
  /** The RX response in ring slot i. */
  const rxRsp = (i: number) => {
    const at = RXRING + 64 + (i % 256) * 8;
    return {
      id: dv.getUint16(at, true),
      offset: dv.getUint16(at + 2, true),
      flags: dv.getUint16(at + 4, true),
      status: dv.getInt16(at + 6, true),
    };
  };
  return { dom, vif: v, frames, grant, page, tx, post, rxRsp, dv, port };
}

/** n bytes of a test frame (EtherType 0x88b5) in data pages from `first`, `per` bytes in each; the slots for them. */
function frameIn(b: ReturnType<typeof backend>, n: number, per: number, first = 0): { bytes: Uint8Array; slots: Slot[] } {
  const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
  bytes.set(F.ethernet(F.BROADCAST, DOM0_MAC, ETH_TEST, new Uint8Array(0)));
  const slots: Slot[] = [];
  for (let at = 0, k = 0; at < n; at += per, k++) {
    const len = Math.min(per, n - at);
    b.page(first + k).set(bytes.subarray(at, at + len));
    slots.push({ gref: b.grant(first + k), size: len });
  }
  slots[0].size = n; // the first slot's size is the whole frame's
  return { bytes, slots };
}

describe("netback on its own (drivers/net/xen-netback)", () => {
  test("connects on the frontend's Connected and ignores Initialised", () => {
    const dom = new Domain({ name: "t" });
    dom.memory = () => new ArrayBuffer(1 << 16);
    const v = new VifBackend(dom, 0, {});
    expect(v.state()).toBe(2);
    dom.xenstored.write(`${FE}/state`, "3");
    expect(v.sawInitialised).toBe(1);
    expect(v.state()).toBe(2); // still InitWait
    expect(dom.xenstored.read(`${BE}/feature-rx-copy`)).toBe("1");
    expect(dom.xenstored.read(`${FE}/mac`)).toBe("00:16:3e:00:00:01");
    expect(dom.xenstored.read(`${BE}/mac`)).toBe("00:16:3e:00:00:01");
    expect(dom.xenstored.read(`${FE}/mtu`)).toBe("1500");
    const b = backend();
    expect(b.vif.state()).toBe(4);
    expect(b.vif.connected).toBe(true);
  });

  test("refuses a frontend without request-rx-copy, or with more queues than it offers", () => {
    const a = backend({}, { "request-rx-copy": undefined });
    expect(a.vif.errors).toEqual([`${FE}/request-rx-copy is missing: this backend only copies into the frontend's buffers (EOPNOTSUPP)`]);
    expect(a.vif.state()).toBe(5);
    expect(a.dom.gnttab.live().mappings + a.vif.txSlots).toBe(0);
    const b = backend({}, { "multi-queue-num-queues": "4" });
    expect(b.vif.errors).toEqual(["guest requested 4 queues, exceeding the maximum of 1."]);
  });

  test("a 3-slot frame: one OKAY per slot, the bytes on the wire in order", () => {
    const b = backend();
    const { bytes, slots } = frameIn(b, 9000, 4096);
    expect(b.tx(slots)).toEqual([
      [0, NETIF_RSP.okay],
      [1, NETIF_RSP.okay],
      [2, NETIF_RSP.okay],
    ]);
    expect(b.frames).toEqual([bytes]);
    expect(b.vif.errors).toEqual([]);
  });

  test("19 slots pass; 20 and 21 are answered NETIF_RSP_ERROR on every slot; 22 disable the vif (fatal_skb_slots)", () => {
    const b = backend();
    for (const n of [19, 20, 21]) {
      const { slots } = frameIn(b, n * 100, 100);
      const rsp = b.tx(slots);
      expect(rsp.length).toBe(n);
      expect(new Set(rsp.map((r) => r[1]))).toEqual(new Set([n === 19 ? NETIF_RSP.okay : NETIF_RSP.error]));
    }
    expect(b.frames.length).toBe(1);
    expect(b.vif.errors).toEqual([
      "Too many slots (18) exceeding limit (18), dropping packet",
      "Too many slots (18) exceeding limit (18), dropping packet",
    ]);
    const { slots } = frameIn(b, 2200, 100);
    expect(b.tx(slots)).toEqual([]);
    expect(b.vif.disabled).toBe(true);
    expect(b.vif.errors[2]).toBe("Malicious frontend using 20 slots, threshold 20; fatal error; disabling device");
  });

  test("runts, and a slot larger than what the first slot's size leaves, are answered NETIF_RSP_ERROR", () => {
    const b = backend();
    expect(b.tx([{ gref: b.grant(0), size: 10 }])).toEqual([[0, NETIF_RSP.error]]);
    const { slots } = frameIn(b, 5000, 4096, 1);
    slots[0].size = 1000; // the second slot (904 bytes) fits; the first then has 96
    slots.push({ gref: b.grant(3), size: 3000, id: 2 });
    slots[1].flags = NETTXF.moreData;
    expect(b.tx(slots).map((r) => r[1])).toEqual([NETIF_RSP.error, NETIF_RSP.error, NETIF_RSP.error]);
    expect(b.vif.errors).toEqual(["Bad packet size: 10", "Invalid tx request, slot size 3000 > remaining size 96"]);
    expect(b.frames).toEqual([]);
    expect(b.vif.disabled).toBe(false);
  });

  test.each([
    [
      "a later slot across its page",
      (b: ReturnType<typeof backend>) =>
        b.tx([
          { gref: b.grant(0), size: 300 },
          { gref: b.grant(1), offset: 4000, size: 200 },
        ]),
      "Cross page boundary, txp->offset: 4000, size: 200",
    ],
    [
      "the first slot across its page",
      (b: ReturnType<typeof backend>) => b.tx([{ gref: b.grant(0), offset: 100, size: 4000 }]),
      "txreq.offset: 100, size: 4000, end: 4100",
    ],
    [
      "an extra-info slot of no known type",
      (b: ReturnType<typeof backend>) =>
        b.tx([
          { gref: b.grant(0), flags: NETTXF.extraInfo, size: 60 },
          { gref: 9, size: 0 },
        ]),
      "Invalid extra type: 9",
    ],
    [
      "an impossible req_prod",
      (b: ReturnType<typeof backend>) => (b.dv.setUint32(TXRING, 300, true), b.dom.evtchn.notify(b.port)),
      "Impossible number of requests. req_prod 300, req_cons 0, size 256",
    ],
  ])("%s disables the vif for good (xenvif_fatal_tx_err)", (_, act, why) => {
    const b = backend();
    act(b);
    expect(b.vif.errors).toEqual([`${why}; fatal error; disabling device`]);
    expect(b.vif.disabled).toBe(true);
    // Nothing moves any more, and the state stays Connected (as Linux's carrier off).
    const { slots } = frameIn(b, 100, 4096, 5);
    b.tx(slots);
    expect(b.frames).toEqual([]);
    expect(b.vif.state()).toBe(4);
  });

  test("an unknown grant is answered NETIF_RSP_ERROR", () => {
    const b = backend();
    expect(b.tx([{ gref: 999, size: 60 }])).toEqual([[0, NETIF_RSP.error]]);
    expect(b.vif.errors[0]).toMatch(/^Grant map of 0\. frag failed! ref: 999: /);
  });

  test("NETTXF_csum_blank: completed as CHECKSUM_PARTIAL; not TCP/UDP over IPv4, dropped after its OKAY", () => {
    const b = backend();
    const udp = F.ethernet(
      F.BROADCAST,
      DOM0_MAC,
      F.ETH_IP,
      F.ipv4(GUEST_IP, PEER_IP, F.IP_UDP, F.udp(GUEST_IP, PEER_IP, 7, 9, new Uint8Array(33).fill(5))),
    );
    const good = udp.slice();
    udp[40] = udp[41] = 0;
    // The pseudo-header sum in the field, as netfront's blankChecksum leaves it.
    const ref = good.slice();
    ref[40] = ref[41] = 0;
    const pseudo = F.checksum(Uint8Array.of(...ref.subarray(26, 34), 0, F.IP_UDP, 0, 41));
    udp[40] = (~pseudo >> 8) & 0xff;
    udp[41] = ~pseudo & 0xff;
    b.page(0).set(udp);
    expect(b.tx([{ gref: b.grant(0), flags: NETTXF.csumBlank | NETTXF.dataValidated, size: udp.length }])).toEqual([[0, NETIF_RSP.okay]]);
    expect(b.frames).toEqual([good]);
    b.page(1).set(F.ethernet(F.BROADCAST, DOM0_MAC, ETH_TEST, new Uint8Array(50)));
    expect(b.tx([{ gref: b.grant(1), flags: NETTXF.csumBlank, size: 64 }])).toEqual([[0, NETIF_RSP.okay]]);
    expect(b.frames.length).toBe(1);
    expect(b.vif.errors).toEqual(["Can't setup checksum in net_tx_action"]);
  });

  test("RX: a frame waits for enough slots (req_event set), then fills them at offset 0, each response in its request's slot", () => {
    const b = backend();
    b.post([0, 1], [500, 501]);
    const bytes = Uint8Array.from({ length: 9000 }, (_, i) => (i * 7) & 0xff);
    b.vif.inject(bytes, { csumBlank: true });
    expect(b.vif.rxFrames).toBe(0); // 3 slots needed, 2 posted
    expect(b.dv.getUint32(RXRING + 4, true)).toBe(3); // "tell me when req_prod passes 2"
    b.post([2], [502]);
    expect(b.vif.rxFrames).toBe(1);
    expect(b.dv.getUint32(RXRING + 8, true)).toBe(3); // rsp_prod
    expect([0, 1, 2].map(b.rxRsp)).toEqual([
      // csum_blank is asked for, but this frame is not TCP/UDP: the flags say so all the same (first slot only).
      { id: 500, offset: 0, flags: NETRXF.moreData | NETRXF.csumBlank | NETRXF.dataValidated, status: 4096 },
      { id: 501, offset: 0, flags: NETRXF.moreData, status: 4096 },
      { id: 502, offset: 0, flags: 0, status: 808 },
    ]);
    expect(b.page(0)).toEqual(bytes.subarray(0, 4096));
    expect(b.page(2).subarray(0, 808)).toEqual(bytes.subarray(8192));
  });
});

test("pcap.ts writes libpcap 2.4 files of Ethernet frames", () => {
  const a = Uint8Array.from({ length: 60 }, (_, i) => i);
  const b = new Uint8Array(70000).fill(7); // longer than the snap length: cut, its length kept
  const bytes = pcapBytes([
    { atNs: 1_700_000_000_123_456_789n, dir: "tx", frame: a },
    { atNs: 1_700_000_001_000_000_000n, dir: "rx", frame: b },
  ]);
  const dv = new DataView(bytes.buffer);
  expect([dv.getUint32(0, true), dv.getUint16(4, true), dv.getUint16(6, true), dv.getUint32(16, true), dv.getUint32(20, true)]).toEqual([
    0xa1b2c3d4, 2, 4, 65535, 1,
  ]);
  expect([dv.getUint32(24, true), dv.getUint32(28, true), dv.getUint32(32, true), dv.getUint32(36, true)]).toEqual([
    1_700_000_000, 123_456, 60, 60,
  ]);
  expect(bytes.subarray(40, 100)).toEqual(a);
  expect([dv.getUint32(100, true), dv.getUint32(108, true), dv.getUint32(112, true)]).toEqual([1_700_000_001, 65535, 70000]);
  expect(bytes.length).toBe(24 + 16 + 60 + 16 + 65535);
});
