// Netfront's xenbus negotiation (xen/include/public/io/netif.h), over the
// generic handshake in xen/xenbus.ts, as Linux's xen-netfront does it and
// xen-netback (drivers/net/xen-netback/xenbus.c) expects it:
//
//   1. Read device/vif/<id>/backend-id: the domain to grant the rings to.
//   2. Read what the toolstack (libxl) wrote in our own directory: mac (required)
//      and mtu (absent before Xen 4.15: 1500).
//   3. Set up both rings, the event channel, and grant and post all 256 RX pages
//      (netfront.ts), before anything is published.
//   4. xenbus connect: at InitWait check the backend's feature-rx-copy (required:
//      we receive by copy only) and feature-sg (frames over one page), then in ONE
//      transaction publish tx-ring-ref, rx-ring-ref, event-channel,
//      request-rx-copy = 1, feature-rx-notify = 1, feature-sg = 1 with state
//      Connected — xen-netback ignores Initialised and connects on the frontend's
//      Connected (frontend_changed()) — then wait for the backend's Connected.
//
// Connect.step() runs these as the named stages of ConnectStage, top to bottom.
// The numeric keys are the rows of KEY_TEXT and KEY_LIMITS, checked by one function; the mac,
// and the rule between mtu and feature-sg, are plain code after it.
//
// Deadlines (OpenOptions, defaults in xen/xenbus.ts and xen/xenstore.ts): each
// xenstore request 10 s, each backend state of the handshake 30 s, the close
// 5 s, and after our Closed the backend's unmapping of the rings and pages
// UNMAP_WAIT_NS. Once connected, the backend leaving Connected fails the device
// (Netfront.fatal) with the reason.
import * as abi from "../abi";
import { Future, State, Task, sleep } from "../sched";
import { CLOSE_TIMEOUT_NS, CONNECT_TIMEOUT_NS, FeatureCheck, Frontend, STATE_CONNECTED, StateWait } from "../xen/xenbus";
import { XsReply, Xenstore, seconds } from "../xen/xenstore";
import { Netfront, REQUEST_TIMEOUT_NS, RING_SLOTS } from "./netfront";
import * as n from "./netif";

/** What the device is, as negotiated and validated (Device.info()). */
export class Info {
  devid: string = "";
  /** The backend's xenstore path, and its domain (the one the rings and pages are granted to). */
  backend: string = "";
  backendDomid: i32 = 0;
  /** The interface's MAC address (the toolstack's mac key), 6 bytes and as written. */
  mac: StaticArray<u8> = new StaticArray<u8>(6);
  macText: string = "";
  /** The toolstack's mtu key (1500 when absent): the largest IP packet, without the 14-byte Ethernet header. */
  mtu: i32 = 1500;
  /** The backend's feature-sg: frames over one page may be sent (several TX slots). */
  sg: bool = false;
  /** Slots of the TX and RX rings, and receive buffers posted. */
  txSlots: i32 = RING_SLOTS;
  rxSlots: i32 = RING_SLOTS;
}

/** How long a disconnect waits for the backend to unmap the rings and pages after Closed. */
export const UNMAP_WAIT_NS: i64 = 10_000_000_000;
const UNMAP_POLL_NS: i64 = 10_000_000;

/** What open() connects to, and the deadlines; the defaults are the module constants. */
export class OpenOptions {
  /** device/vif/<devid> ("": the lowest-numbered vif). */
  devid: string = "";
  /** Each backend state the handshake waits for (InitWait, Connected). */
  connectTimeoutNs: i64 = CONNECT_TIMEOUT_NS;
  /** The backend's answer to our Closing. */
  closeTimeoutNs: i64 = CLOSE_TIMEOUT_NS;
  /** The backend's unmapping of the rings and pages after our Closed. */
  unmapTimeoutNs: i64 = UNMAP_WAIT_NS;
  /** How long a frame may wait on the TX ring for its answers before the device fails. */
  requestTimeoutNs: i64 = REQUEST_TIMEOUT_NS;
}

/** Fails the device when the backend leaves Connected (the frontend's monitor rejects; close() cancels it). */
class BackendLost extends Future {
  constructor(
    public front: Netfront,
    public monitor: StateWait,
  ) {
    super();
  }
  wake(from: Future): void {
    if (from.state == State.Rejected) this.front.fatal(this.monitor.why);
  }
}

/** A decimal u32 written exactly ("", signs, spaces, leading "+" and overflow are errors); -1 on error. */
function parseU32(s: string): i64 {
  if (s.length == 0 || s.length > 10) return -1;
  let v: i64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + <i64>(c - 48);
  }
  return v > 0xffffffff ? -1 : v;
}

/** A hex digit's value, or -1. */
function hexDigit(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** `s` with A-F lowered: a parsed MAC's text (String#toLowerCase is Unicode's, 1.4 KB of code). */
function lowerHex(s: string): string {
  let out = s;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 70) {
      out = "";
      for (let j = 0; j < s.length; j++) {
        const d = s.charCodeAt(j);
        out += String.fromCharCode(d >= 65 && d <= 70 ? d + 32 : d);
      }
      break;
    }
  }
  return out;
}

/** Parses "00:16:3e:12:34:56" (either case) into out; false unless it is exactly six hex pairs joined by colons. */
export function parseMac(s: string, out: StaticArray<u8>): bool {
  if (s.length != 17) return false;
  for (let i = 0; i < 6; i++) {
    const hi = hexDigit(s.charCodeAt(i * 3));
    const lo = hexDigit(s.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && s.charCodeAt(i * 3 + 2) != 58)) return false;
    out[i] = <u8>((hi << 4) | lo);
  }
  return true;
}

/** The rows of the key tables. */
enum Key {
  Mtu,
  RxCopy,
  Sg,
}

/** KEY_LIMITS flags: in our own directory (written by the toolstack, else the backend's); required. */
const FRONTEND: i64 = 1;
const REQUIRED: i64 = 2;

// The numeric keys, in Key order, as static data (no code builds it, as blkfront-xs.ts):
// each value is a decimal from min to max; absent or empty, it takes the default,
// unless REQUIRED (then the third text says why it matters). A refused value reads
// `vif 0: backend key <key> = "<value>" <the value ...>`. @lazy: compiled only into
// an app that opens a vif.
@lazy const KEY_TEXT: StaticArray<string> = [
  // key             refused: the value ...                                          absent and required: the backend ...
  "mtu",             "is not an MTU from 68 to 65521",                               "",
  "feature-rx-copy", "is not 1: netfront receives by copy only (request-rx-copy)",
                     "offers no feature-rx-copy: netfront receives by copy only (request-rx-copy); check the backend domain's netback",
  "feature-sg",      "is neither 0 nor 1",                                           "",
];
@lazy const KEY_LIMITS: StaticArray<i64> = [
  // default min max    flags
  1500,      68, 65521, FRONTEND, // mtu
  0,         1,  1,     REQUIRED, // feature-rx-copy
  0,         0,  1,     0,        // feature-sg
];

/** Checks `text` (as read; "" when absent) against row k; "" when good (the value in out[0]), else the refusal. */
function checkKey(name: string, k: Key, text: string, out: StaticArray<i64>): string {
  const flags = unchecked(KEY_LIMITS[4 * k + 3]);
  if (text == "") {
    if (flags & REQUIRED) return name + ": the backend " + unchecked(KEY_TEXT[3 * k + 2]);
    out[0] = unchecked(KEY_LIMITS[4 * k]);
    return "";
  }
  const v = parseU32(text);
  if (v < unchecked(KEY_LIMITS[4 * k + 1]) || v > unchecked(KEY_LIMITS[4 * k + 2]))
    return keyError(name, (flags & FRONTEND) != 0, unchecked(KEY_TEXT[3 * k]), text, unchecked(KEY_TEXT[3 * k + 1]));
  out[0] = v;
  return "";
}

/** "vif 0: backend key feature-sg = "2" is neither 0 nor 1". */
function keyError(name: string, frontend: bool, key: string, value: string, why: string): string {
  return name + ": " + (frontend ? "frontend" : "backend") + " key " + key + " = \"" + value + "\" " + why;
}

/** At InitWait, before anything is published: feature-rx-copy, feature-sg, and what the mtu needs of them. */
class FeaturesCheck extends FeatureCheck {
  constructor(public c: Connect) {
    super();
  }
  check(fe: Frontend): string {
    const c = this.c;
    const v = c.num;
    let why = checkKey(c.name, Key.RxCopy, fe.featureValue("feature-rx-copy"), v);
    if (why.length > 0) return why;
    why = checkKey(c.name, Key.Sg, fe.featureValue("feature-sg"), v);
    if (why.length > 0) return why;
    const info = c.info;
    info.sg = v[0] == 1;
    // A frame of mtu + 14 bytes over one page needs several TX slots: feature-sg.
    if (!info.sg && info.mtu + n.ETH_HLEN > n.PAGE)
      return keyError(c.name, true, "mtu", info.mtu.toString(), "needs frames of " + (info.mtu + n.ETH_HLEN).toString() + " bytes, over one page, but the backend offers no feature-sg");
    return "";
  }
}

/** The stages of Connect, in the order they run; each handles what the one before it awaited. */
enum ConnectStage {
  /** Read device/vif/<id>/backend-id: the domain to grant the rings to. */
  Start,
  /** Check the backend-id; read the toolstack's mac key. */
  BackendId,
  /** Check the mac; read the toolstack's mtu key. */
  Mac,
  /** Check the mtu; set up rings, channel and RX buffers; run the xenbus handshake to Connected. */
  Mtu,
  /** Connected: the device is ready. */
  Handshake,
}

/** The open handshake; resolves with `front` and `info` set, or rejects naming the device and the key. */
export class Connect extends Task {
  stage: ConnectStage = ConnectStage.Start;
  name: string;
  fe: Frontend;
  req: XsReply | null = null;
  /** Scratch for checkKey. */
  num: StaticArray<i64> = new StaticArray<i64>(1);
  info: Info = new Info();
  front: Netfront | null = null;

  constructor(
    public xs: Xenstore,
    public devid: string,
    public opts: OpenOptions,
  ) {
    super();
    this.name = "vif " + devid;
    const fe = new Frontend(xs, "vif", devid);
    fe.connectTimeoutNs = opts.connectTimeoutNs;
    fe.closeTimeoutNs = opts.closeTimeoutNs;
    this.fe = fe;
    this.info.devid = devid;
  }

  step(): void {
    const a = this.awaited;
    const fe = this.fe;
    switch (this.stage) {
      case ConnectStage.Start: {
        this.stage = ConnectStage.BackendId;
        this.await((this.req = this.xs.read(fe.path + "/backend-id")));
        return;
      }
      case ConnectStage.BackendId: {
        const r = this.req!;
        if (!r.ok) {
          if (r.errno == abi.ENOENT) return this.bail(fe.path + ": no backend-id — is there a vif line in the xl config?");
          return this.bail(fe.path + "/backend-id: " + r.error);
        }
        const d = parseU32(r.text());
        if (d < 0 || d >= 0x7ff0) return this.bail(this.name + ": frontend key backend-id = \"" + r.text() + "\" is not a domain id");
        this.info.backendDomid = <i32>d;
        this.stage = ConnectStage.Mac;
        this.await((this.req = this.xs.read(fe.path + "/mac")));
        return;
      }
      case ConnectStage.Mac: {
        const r = this.req!;
        const info = this.info;
        if (!r.ok) {
          if (r.errno == abi.ENOENT)
            return this.bail(this.name + ": the toolstack wrote no mac key in " + fe.path + " — was the vif made by xl (a vif line in the xl config)?");
          return this.bail(fe.path + "/mac: " + r.error);
        }
        const s = r.text();
        if (!parseMac(s, info.mac)) return this.bail(keyError(this.name, true, "mac", s, "is not a MAC address (six hex pairs like 00:16:3e:12:34:56)"));
        if ((info.mac[0] & 1) != 0) return this.bail(keyError(this.name, true, "mac", s, "is a multicast address, not an interface's"));
        let zero = true;
        for (let i = 0; i < 6; i++) if (info.mac[i] != 0) zero = false;
        if (zero) return this.bail(keyError(this.name, true, "mac", s, "is all zeros, not an interface's"));
        info.macText = lowerHex(s);
        this.stage = ConnectStage.Mtu;
        this.await((this.req = this.xs.read(fe.path + "/mtu")));
        return;
      }
      case ConnectStage.Mtu: {
        const r = this.req!;
        if (!r.ok && r.errno != abi.ENOENT) return this.bail(fe.path + "/mtu: " + r.error);
        const why = checkKey(this.name, Key.Mtu, r.ok ? r.text() : "", this.num);
        if (why.length > 0) return this.bail(why);
        this.info.mtu = <i32>this.num[0];
        const front = new Netfront(this.name, this.info.backendDomid);
        front.requestTimeoutNs = this.opts.requestTimeoutNs;
        this.front = front;
        const failed = front.setup();
        if (failed.length > 0) return this.bail(failed);
        fe.feature("feature-rx-copy", "").feature("feature-sg", "");
        fe.check = new FeaturesCheck(this);
        fe.publish("tx-ring-ref", front.ringRefs[0].toString())
          .publish("rx-ring-ref", front.ringRefs[1].toString())
          .publish("event-channel", front.ch!.port.toString())
          .publish("request-rx-copy", "1")
          .publish("feature-rx-notify", "1")
          .publish("feature-sg", "1");
        fe.publishState = STATE_CONNECTED;
        this.stage = ConnectStage.Handshake;
        this.await(fe.connect());
        return;
      }
      case ConnectStage.Handshake: {
        if (a!.failed) return this.bail(a!.error);
        const front = this.front!;
        this.info.backend = fe.backend;
        front.sg = this.info.sg;
        front.connected = true;
        const m = fe.monitor;
        if (m) m.addWaiter(new BackendLost(front, m));
        this.finish();
        return;
      }
    }
  }

  // Releases what was set up (the backend never mapped it, or let go when it refused), then rejects.
  private bail(msg: string): void {
    const f = this.front;
    if (f) f.teardown();
    this.fail(msg);
  }
}

/** The stages of Disconnect, in the order they run. */
enum DisconnectStage {
  /** Wait until no frame is queued or in flight (each has its deadline). */
  Drain,
  /** xenbus Closing → Closed (xen/xenbus.ts, with its deadline). */
  Close,
  /** Closed: fail the device for late callers, close the event channel, end the grants. */
  Closed,
  /** The backend still maps a ring or page: poll until it unmaps them, or unmapWaitNs passes. */
  Unmap,
}

/** The orderly disconnect: drain, xenbus Closing → Closed, then end every grant once the backend unmapped it. */
export class Disconnect extends Task {
  stage: DisconnectStage = DisconnectStage.Drain;
  closeError: string = "";
  waited: i64 = 0;
  constructor(
    public front: Netfront,
    public fe: Frontend,
    public unmapWaitNs: i64 = UNMAP_WAIT_NS,
  ) {
    super();
  }
  step(): void {
    const a = this.awaited;
    const f = this.front;
    switch (this.stage) {
      case DisconnectStage.Drain: {
        this.stage = DisconnectStage.Close;
        this.await(f.idle());
        return;
      }
      case DisconnectStage.Close: {
        this.stage = DisconnectStage.Closed;
        this.await(this.fe.close());
        return;
      }
      case DisconnectStage.Closed: {
        if (a!.failed) this.closeError = a!.error;
        f.fatal("the device is closed");
        const ch = f.ch;
        if (ch) ch.close();
        this.stage = DisconnectStage.Unmap;
        this.tryEnd();
        return;
      }
      case DisconnectStage.Unmap: {
        this.tryEnd();
        return;
      }
    }
  }

  // The backend unmaps when it sees our Closed, which may be a little later: poll end_access.
  private tryEnd(): void {
    const f = this.front;
    const giveUp = this.waited >= this.unmapWaitNs;
    const done = f.endGrants(giveUp);
    if (!done && !giveUp) {
      this.waited += UNMAP_POLL_NS;
      this.await(sleep(UNMAP_POLL_NS));
      return;
    }
    if (this.closeError.length > 0) return this.fail(this.closeError);
    if (f.sharedPages > 0)
      return this.fail(f.name + ": the backend still maps " + f.sharedPages.toString() + " pages " + seconds(this.unmapWaitNs) + " after closing (they stay its own)");
    this.finish();
  }
}
