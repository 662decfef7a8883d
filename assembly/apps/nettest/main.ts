// nettest: in-guest tests of the network device (runtime/net) against the
// harness's netback and its scripted peer, or dom0 under Xen. A driver test,
// not a TCP/IP stack: ARP, ICMP echo and UDP echo are answered right here on
// the Device. One case per run, chosen by the command line:
//
//   info [connect ms]       the negotiated device, one line
//   serve [ip] [idle ms] [offload|plain] [tx ms]
//                           answers ARP and ICMP echo requests for ip (default
//                           10.0.0.2) and UDP on port 7 (echo) until a stop frame
//                           (EtherType 0x88b5, "stop") arrives, or nothing has
//                           arrived for idle ms (default 10000: a FAIL). csum_blank
//                           frames are filled in before they are checked. With
//                           offload, UDP replies go out with NETTXF_csum_blank.
//                           tx ms: the device's deadline for TX answers (default 30 s).
//                           Under Xen it then prints "timing: main <ms>, ready <ms>,
//                           first answer <ms> ms after entry" (entry: the shim's first
//                           instruction, boot_ns; main: this app's first statement;
//                           ready: the device open).
//   sizes <bytes>...        sends a test frame (EtherType 0x88b5) of each size and
//                           waits for the peer's echo of it: equal bytes
//   sweep <from> <to> <step>  the same for each size from..to
//   blast <count> <bytes>   sends count frames as fast as back-pressure allows
//
// Every mode checks that the device's pages are all given back after close.
// Prints its findings, then exactly one result line (TEST PASS or FAIL: ...).
import { boot, console, iopage, net, sched, time, xenstore } from "../../runtime";
import { check, eq, result } from "../../runtime/testing";

const mainAt = time.monotonic();
const args = boot.args();
const which = args.length > 0 ? args[0] : "";
const num = (i: i32, def: i64): i64 => (args.length > i ? I64.parseInt(args[i]) : def);

const ETH_TEST: u16 = 0x88b5; // IEEE 802 local experimental EtherType
const ETH_ARP: u16 = 0x0806;
const ETH_IP: u16 = 0x0800;

function be16(d: Uint8Array, at: i32): u16 {
  return (<u16>d[at] << 8) | <u16>d[at + 1];
}
function setBe16(d: Uint8Array, at: i32, v: u16): void {
  d[at] = <u8>(v >> 8);
  d[at + 1] = <u8>v;
}

/** The Internet checksum of d[from, from + len). */
function csum(d: Uint8Array, from: i32, len: i32): u16 {
  let s: u32 = 0;
  let i = 0;
  for (; i + 1 < len; i += 2) s += (<u32>d[from + i] << 8) | <u32>d[from + i + 1];
  if (i < len) s += <u32>d[from + i] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return <u16>(~s & 0xffff);
}

function parseIp(s: string, out: Uint8Array): bool {
  const parts = s.split(".");
  if (parts.length != 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (p.length == 0 || p.length > 3) return false;
    let v = 0;
    for (let k = 0; k < p.length; k++) {
      const c = p.charCodeAt(k);
      if (c < 48 || c > 57) return false;
      v = v * 10 + c - 48;
    }
    if (v > 255) return false;
    out[i] = <u8>v;
  }
  return true;
}

/** ns as milliseconds with one decimal ("12.3"). */
function msText(ns: i64): string {
  const tenths = ns / (time.NS_PER_MS / 10);
  return (tenths / 10).toString() + "." + (tenths % 10).toString();
}

function openDevice(connectMs: i64 = 0, txMs: i64 = 0): net.Device | null {
  const opts = new net.OpenOptions();
  if (connectMs > 0) opts.connectTimeoutNs = connectMs * time.NS_PER_MS;
  if (txMs > 0) opts.requestTimeoutNs = txMs * time.NS_PER_MS;
  const o = sched.wait(net.open(opts));
  if (!o.ok) {
    console.log("open: " + o.error);
    return null;
  }
  return o.device;
}

/** Closes the device and checks that every page came back. */
function closeDevice(dev: net.Device, pagesBefore: i32): void {
  const c = sched.wait(dev.close());
  eq(c.ok ? "ok" : c.error, "ok", "orderly disconnect");
  eq(iopage.inUse().toString(), pagesBefore.toString(), "I/O pages back to their count before open");
}

function info(pages: i32): void {
  const dev = openDevice(num(1, 0));
  if (!dev) return;
  const i = dev.info();
  console.log(
    "info: mac=" + dev.macText + " mtu=" + dev.mtu.toString() + " sg=" + (i.sg ? "1" : "0") + " tx-slots=" + i.txSlots.toString() +
      " rx-slots=" + i.rxSlots.toString() + " backend=" + i.backend,
  );
  check(dev.mac.length == 6, "opened");
  closeDevice(dev, pages);
}

// ---- serve: ARP, ICMP echo, UDP echo ----

class Server extends net.FrameHandler {
  ip: Uint8Array = new Uint8Array(4);
  mac: Uint8Array;
  offload: bool = false;
  stopped: bool = false;
  arp: i32 = 0;
  echo: i32 = 0;
  udp: i32 = 0;
  csumBlank: i32 = 0;
  /** Frames dropped because a checksum did not verify (a corrupting wire). */
  bad: i32 = 0;
  other: i32 = 0;
  sendErrors: i32 = 0;
  lastError: string = "";
  last: i64 = 0;
  /** monotonic() of the first reply handed to the device (0: none yet). */
  firstAnswer: i64 = 0;
  sends: Array<net.TxOp> = new Array<net.TxOp>();
  constructor(public dev: net.Device) {
    super();
    this.mac = dev.mac;
  }

  onFrame(f: net.Frame): void {
    this.last = time.monotonic();
    const d = f.data;
    const type = be16(d, 12);
    if (type == ETH_TEST && d.length >= 18 && d[14] == 0x73 && d[15] == 0x74 && d[16] == 0x6f && d[17] == 0x70) {
      this.stopped = true; // "stop"
      return;
    }
    if (type == ETH_ARP) return this.onArp(d);
    if (type == ETH_IP) return this.onIp(f);
    this.other++;
  }

  // A frame not for this server; a frame whose checksum does not verify.
  private skip(): void {
    this.other++;
  }
  private drop(): void {
    this.bad++;
  }

  private mine(d: Uint8Array, at: i32): bool {
    for (let i = 0; i < 4; i++) if (d[at + i] != this.ip[i]) return false;
    return true;
  }

  private onArp(d: Uint8Array): void {
    // RFC 826: Ethernet/IPv4 request for our address.
    if (d.length < 42 || be16(d, 14) != 1 || be16(d, 16) != ETH_IP || d[18] != 6 || d[19] != 4 || be16(d, 20) != 1 || !this.mine(d, 38)) {
      this.other++;
      return;
    }
    const r = new Uint8Array(42);
    for (let i = 0; i < 6; i++) {
      r[i] = d[22 + i]; // to the sender's hardware address
      r[6 + i] = this.mac[i];
      r[22 + i] = this.mac[i]; // sha
      r[32 + i] = d[22 + i]; // tha
    }
    setBe16(r, 12, ETH_ARP);
    setBe16(r, 14, 1);
    setBe16(r, 16, ETH_IP);
    r[18] = 6;
    r[19] = 4;
    setBe16(r, 20, 2); // reply
    for (let i = 0; i < 4; i++) {
      r[28 + i] = this.ip[i]; // spa
      r[38 + i] = d[28 + i]; // tpa
    }
    this.arp++;
    this.reply(r, 0);
  }

  private onIp(f: net.Frame): void {
    const d = f.data;
    if (d.length < 34 || d[14] >> 4 != 4) return this.skip();
    const ihl = <i32>(d[14] & 0xf) * 4;
    const total = <i32>be16(d, 16);
    if (ihl < 20 || total < ihl || 14 + total > d.length || !this.mine(d, 30)) return this.skip();
    if (csum(d, 14, ihl) != 0) return this.drop();
    if ((be16(d, 20) & 0x3fff) != 0) return this.skip(); // fragments: not here
    const proto = d[23];
    const l4 = 14 + ihl;
    const len = total - ihl;
    // Only the IP packet is answered (an Ethernet pad after it is not echoed).
    const r = d.slice(0, 14 + total);
    if (proto == 1 && len >= 8 && d[l4] == 8) {
      if (csum(d, l4, len) != 0) return this.drop();
      r[l4] = 0; // echo reply
      setBe16(r, l4 + 2, 0);
      setBe16(r, l4 + 2, csum(r, l4, len));
      this.echo++;
      this.answerIp(r, ihl);
      this.reply(r, 0);
      return;
    }
    if (proto == 17 && len >= 8 && be16(d, l4 + 2) == 7) {
      if (f.csumBlank) {
        this.csumBlank++;
        if (!net.fillChecksum(r)) return this.drop();
      }
      if (!net.checksumOk(r)) return this.drop();
      this.udp++;
      const sport = be16(r, l4);
      setBe16(r, l4, 7);
      setBe16(r, l4 + 2, sport);
      this.answerIp(r, ihl);
      if (this.offload) {
        net.blankChecksum(r);
        this.reply(r, net.TX_CSUM_BLANK | net.TX_DATA_VALIDATED);
      } else {
        net.fillChecksum(r);
        this.reply(r, 0);
      }
      return;
    }
    this.other++;
  }

  // Turns the frame around: Ethernet and IP addresses swapped, a fresh TTL and header checksum.
  private answerIp(r: Uint8Array, ihl: i32): void {
    for (let i = 0; i < 6; i++) {
      r[i] = r[6 + i];
      r[6 + i] = this.mac[i];
    }
    for (let i = 0; i < 4; i++) {
      const s = r[26 + i];
      r[26 + i] = r[30 + i];
      r[30 + i] = s;
    }
    r[22] = 64;
    setBe16(r, 24, 0);
    setBe16(r, 24, csum(r, 14, ihl));
  }

  private reply(r: Uint8Array, flags: u16): void {
    if (this.firstAnswer == 0) this.firstAnswer = time.monotonic();
    const op = this.dev.send(r, flags);
    if (op.failed) {
      this.sendErrors++;
      this.lastError = op.error;
    } else this.sends.push(op);
  }
}

function serve(pages: i32): void {
  const ipText = args.length > 1 ? args[1] : "10.0.0.2";
  const idle = num(2, 10000) * time.NS_PER_MS;
  const dev = openDevice(0, num(4, 0));
  if (!dev) return;
  const ready = time.monotonic();
  const s = new Server(dev);
  if (!parseIp(ipText, s.ip)) {
    check(false, "\"" + ipText + "\" is an IPv4 address");
    return;
  }
  s.offload = args.length > 3 && args[3] == "offload";
  dev.onFrame(s);
  s.last = time.monotonic();
  // Serve until the stop frame, a device failure, or idle ms without a frame.
  while (!s.stopped && dev.broken.length == 0 && time.monotonic() - s.last < idle) {
    sched.wait(sched.sleep(min<i64>(idle, 50 * time.NS_PER_MS)));
    // Settled sends are forgotten as we go; a failed one is an error of the device.
    let k = 0;
    for (let i = 0; i < s.sends.length; i++) {
      const op = s.sends[i];
      if (op.pending) s.sends[k++] = op;
      else if (op.failed) {
        s.sendErrors++;
        s.lastError = op.error;
      }
    }
    s.sends.length = k;
  }
  const f = dev.front;
  console.log(
    "served: arp=" + s.arp.toString() + " echo=" + s.echo.toString() + " udp=" + s.udp.toString() + " csum-blank=" + s.csumBlank.toString() +
      " bad=" + s.bad.toString() + " other=" + s.other.toString() + " rx=" + f.rxFrames.toString() + " tx=" + f.txFrames.toString() +
      " rx-errors=" + f.rxErrors.toString() + " send-errors=" + s.sendErrors.toString(),
  );
  // The goal: guest entry -> first packet answered (the harness has no boot to time).
  const bi = boot.info();
  if (bi.platform == boot.Platform.Xen)
    console.log(
      "timing: main " + msText(mainAt - bi.bootNs) + ", ready " + msText(ready - bi.bootNs) + ", first answer " +
        (s.firstAnswer != 0 ? msText(s.firstAnswer - bi.bootNs) : "none") + " ms after entry",
    );
  if (dev.broken.length == 0) {
    check(s.stopped, "the peer's stop frame arrived (nothing for " + (idle / time.NS_PER_MS).toString() + " ms otherwise)");
    eq(s.lastError, "", "every reply was sent");
  }
  dev.onFrame(null);
  closeDevice(dev, pages);
  // Why the device failed, if it did (close() waits for frames in flight: their deadline may end it).
  if (dev.broken != "the device is closed") {
    console.log("device: " + dev.name + ": " + dev.broken);
    check(false, "the device kept working");
  }
}

// ---- sizes: frames of every size out, and their echoes back ----

/** A test frame of `size` bytes: broadcast, EtherType 0x88b5, then the size and a pattern. */
function testFrame(dev: net.Device, size: i32): Uint8Array {
  const d = new Uint8Array(size);
  for (let i = 0; i < 6; i++) {
    d[i] = 0xff;
    d[6 + i] = dev.mac[i];
  }
  setBe16(d, 12, ETH_TEST);
  for (let i = 14; i < size; i++) d[i] = <u8>(i * 13 + size * 7);
  if (size >= 18) {
    d[14] = <u8>(size >> 24);
    d[15] = <u8>(size >> 16);
    d[16] = <u8>(size >> 8);
    d[17] = <u8>size;
  }
  return d;
}

function sizes(pages: i32, list: Array<i32>): void {
  const dev = openDevice();
  if (!dev) return;
  let bad = 0;
  for (let k = 0; k < list.length; k++) {
    const size = list[k];
    const d = testFrame(dev, size);
    const tx = dev.send(d);
    const rx = dev.receive();
    sched.wait(sched.timeout(rx, 2 * time.NS_PER_S));
    sched.wait(tx);
    if (!tx.ok) {
      check(false, "send " + size.toString() + ": " + tx.error);
      bad++;
      break;
    }
    if (!rx.ok) {
      check(false, "echo of " + size.toString() + " bytes: " + rx.error);
      bad++;
      break;
    }
    const e = rx.frame!.data;
    let same = e.length == size;
    for (let i = 12; same && i < size; i++) if (e[i] != d[i]) same = false;
    if (!same) {
      check(false, "the echo of " + size.toString() + " bytes has " + e.length.toString() + " bytes, or others");
      bad++;
    }
  }
  check(bad == 0, list.length.toString() + " frames from " + list[0].toString() + " to " + list[list.length - 1].toString() + " bytes sent and echoed intact");
  const f = dev.front;
  console.log("sizes: tx=" + f.txFrames.toString() + " rx=" + f.rxFrames.toString() + " tx-bytes=" + f.txBytes.toString() + " rx-bytes=" + f.rxBytes.toString());
  closeDevice(dev, pages);
}

// ---- blast: back-pressure ----

function blast(pages: i32): void {
  const count = <i32>num(1, 1000);
  const size = <i32>num(2, 1514);
  const dev = openDevice();
  if (!dev) return;
  const ops = new Array<sched.Future>();
  let maxQueued = 0;
  let refused = "";
  for (let i = 0; i < count; i++) {
    const op = dev.send(testFrame(dev, size));
    if (op.failed) {
      refused = op.error;
      break;
    }
    ops.push(op);
    maxQueued = max(maxQueued, dev.queued());
    // Back-pressure: let the ring drain once frames queue up.
    if (dev.queued() >= 64) sched.wait(dev.writable());
  }
  sched.wait(new sched.AllSettled(ops));
  let ok = 0;
  for (let i = 0; i < ops.length; i++) if (ops[i].ok) ok++;
  console.log("blast: sent=" + ops.length.toString() + " ok=" + ok.toString() + " max-queued=" + maxQueued.toString());
  eq(refused, "", "no frame refused");
  check(ok == count, count.toString() + " frames answered OKAY");
  closeDevice(dev, pages);
}

xenstore.open(); // its ring page is the runtime's for good: count the device's pages only
const pages = iopage.inUse();
if (which == "info") info(pages);
else if (which == "serve") serve(pages);
else if (which == "sizes") {
  const list = new Array<i32>();
  for (let i = 1; i < args.length; i++) list.push(<i32>I32.parseInt(args[i]));
  if (list.length > 0) sizes(pages, list);
} else if (which == "sweep") {
  const list = new Array<i32>();
  const step = <i32>max<i64>(num(3, 1), 1);
  for (let s = <i32>num(1, 14); s <= <i32>num(2, 65535); s += step) list.push(s);
  if (list.length > 0) sizes(pages, list);
} else if (which == "blast") blast(pages);
else console.log("usage: nettest info | serve [ip] [idle ms] [offload|plain] [tx ms] | sizes <bytes>... | sweep <from> <to> <step> | blast <count> <bytes>");
result();
