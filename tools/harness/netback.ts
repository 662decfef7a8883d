// A virtual network interface backend (xen-netback's role) for the harness: the
// xenbus side of xen/include/public/io/netif.h, the TX and RX rings read through
// the emulated grant table, and a wire to an in-process peer. It is modelled on
// Linux's drivers/net/xen-netback:
//
//   xenbus.c  probe writes the feature keys, then InitWait; the frontend's
//             Initialised is ignored and its Connected connects (frontend_changed);
//             connect() reads mac from the backend's own directory and the
//             frontend's request-rx-copy, feature-rx-notify, feature-sg, the ring
//             refs and event channel(s); a refusal (xenbus_dev_fatal) is Closing.
//             Linux since 4.x ignores read_xenbus_vif_flags()'s -EOPNOTSUPP and
//             receives by copy anyway; a frontend without request-rx-copy then
//             breaks, so this backend refuses it, as older Linux did.
//   netback.c xenvif_tx_build_gops / xenvif_count_requests: an impossible req_prod,
//             a bad extra-info slot, more than 20 slots after the first
//             (fatal_skb_slots) or a slot
//             crossing its page (offset + size > 4096) disable the vif for good
//             (xenvif_fatal_tx_err: nothing moves any more, the state stays
//             Connected); more than 18 slots after the first
//             (XEN_NETBK_LEGACY_SLOTS_MAX), a slot larger than what the first
//             slot's size leaves,
//             and runt frames (< ETH_HLEN) are answered NETIF_RSP_ERROR on every
//             slot (xenvif_tx_err). One response per slot, extra-info slots get
//             NETIF_RSP_NULL. NETTXF_csum_blank frames are completed as
//             CHECKSUM_PARTIAL would be; one that is not TCP/UDP over IPv4 is
//             dropped after its OKAY (checksum_setup fails).
//   rx.c      a frame waits until ceil(len / 4096) RX requests are posted
//             (xenvif_rx_ring_slots_available, which sets req_event); each slot
//             gets up to 4096 bytes at offset 0 and its response goes in the
//             request's own slot, with NETRXF_more_data on all but the last and
//             csum_blank | data_validated on the first of a CHECKSUM_PARTIAL frame.
//
// The wire: frames the guest sends go (through WireFaults) to a Peer, a scripted
// in-process host that answers with frames or sends its own through a WirePort;
// those come back (through WireFaults) into the guest's RX ring. Every frame is
// captured for a pcap file (pcap.ts) when a test fails. RingFaults make the
// backend hostile (mangled, duplicated or extra responses) or starve the guest's RX.
import type { Domain } from "./domain.ts";
import { BackendEnd } from "./event-channels.ts";
import { GrantMapping } from "./grant-table.ts";
import { toolstackDevice, XenbusFaults, XenbusState } from "./xenbus.ts";
import { mulberry32 } from "./blkback.ts";
import { CapturedFrame } from "./pcap.ts";

/** NETTXF_* and NETRXF_* (netif.h): NOT the same bits. */
export const NETTXF = { csumBlank: 1 << 0, dataValidated: 1 << 1, moreData: 1 << 2, extraInfo: 1 << 3 } as const;
export const NETRXF = { dataValidated: 1 << 0, csumBlank: 1 << 1, moreData: 1 << 2, extraInfo: 1 << 3 } as const;
/** NETIF_RSP_* (netif.h). */
export const NETIF_RSP = { dropped: -2, error: -1, okay: 0, null: 1 } as const;

const PAGE = 4096;
const RING_HEADER = 64;
/** Both one-page rings have 256 slots (__RING_SIZE of 12-byte TX and 8-byte RX entries). */
export const RING_SLOTS = 256;
const TX_ENTRY = 12;
const RX_ENTRY = 8;
const ETH_HLEN = 14;
/** XEN_NETBK_LEGACY_SLOTS_MAX and fatal_skb_slots' default (netback.c). */
export const LEGACY_SLOTS_MAX = 18;
export const FATAL_SKB_SLOTS = 20;
/** XEN_NETIF_EXTRA_TYPE_MAX (netif.h). */
const EXTRA_TYPE_MAX = 4;
/** The toolstack's MAC for the first vif, and dom0's side of the wire (libxl's fe:ff:ff:ff:ff:ff). */
export const GUEST_MAC = "00:16:3e:00:00:01";
export const DOM0_MAC = Uint8Array.of(0xfe, 0xff, 0xff, 0xff, 0xff, 0xff);

/** How the peer talks back: send frames to the guest, and act later. */
export interface WirePort {
  /** Sends a frame to the guest (through the wire's faults). csumBlank: delivered as dom0's stack does with offload. */
  send(frame: Uint8Array, opts?: { csumBlank?: boolean }): void;
  /** Runs fn after ms of the guest's time (a timed event: it wakes a blocked guest). */
  after(ms: number, fn: () => void): void;
  /** Milliseconds since the vif connected. */
  now(): number;
}

/** A scripted host on the other end of the wire. */
export interface Peer {
  /** The vif is connected: the peer may start sending. */
  start?(port: WirePort): void;
  /** A frame from the guest; frames returned go back to it (as port.send). */
  receive(frame: Uint8Array, port: WirePort): Uint8Array[] | void;
}

/** The wire's own faults, on frames in both directions unless `direction` says otherwise; seeded. */
export interface WireFaults {
  seed?: number;
  /** Probability that a frame is lost. */
  drop?: number;
  /** Probability that a frame arrives twice. */
  duplicate?: number;
  /** Probability that a frame is held back and arrives after the next one. */
  reorder?: number;
  /** Probability that one byte after the Ethernet header is flipped. */
  corrupt?: number;
  /** Every frame arrives this many ms later. */
  delayMs?: number;
  direction?: "both" | "toGuest" | "fromGuest";
}

/** The backend's ring side misbehaving. */
export interface RingFaults {
  /** Never consume RX requests (the guest is starved), for ever or for the first rxStarveMs after connecting. */
  rxStarve?: boolean;
  rxStarveMs?: number;
  /** Rewrites TX responses as they go on the ring; n counts TX responses from 0. */
  mangleTx?: (rsp: { id: number; status: number }, n: number) => void;
  /** Rewrites RX responses; n counts RX responses from 0. */
  mangleRx?: (rsp: { id: number; offset: number; flags: number; status: number }, n: number) => void;
  /** After TX response n, the same response once more (an answer to nothing in flight). */
  duplicateTx?: number;
  /** After RX response n, rsp_prod one past what the guest posted (a response with no request). */
  extraRx?: number;
  /** TX slots from this one (counted from 0) are consumed and never answered. */
  swallowTxFrom?: number;
}

export interface VifOptions {
  /** The toolstack's mac (both directories; default GUEST_MAC with the last byte devid + 1). */
  mac?: string;
  /** The toolstack's mtu in the frontend directory (default 1500; null: not written, as before Xen 4.15). */
  mtu?: number | null;
  /** Frontend keys the toolstack writes instead (hostile-toolstack tests); undefined removes. */
  frontendKeys?: Record<string, string | undefined>;
  /** Backend keys written at probe instead of the real ones (hostile-backend tests); undefined removes. */
  keys?: Record<string, string | undefined>;
  /** The peer (default: none, frames from the guest go nowhere). A bare function answers each frame. */
  wire?: Peer | ((frame: Uint8Array, port: WirePort) => Uint8Array[] | void);
  wireFaults?: WireFaults;
  faults?: RingFaults;
  /** The backend's xenbus side misbehaving (xenbus.ts); leaveAt counts TX frames. */
  xenbus?: XenbusFaults;
  /** Frames waiting for RX slots at most (Linux bounds rx_queue by bytes); more are dropped. */
  rxQueueMax?: number;
}

interface TxReq {
  gref: number;
  offset: number;
  flags: number;
  id: number;
  size: number;
}

/** A frame waiting for the guest's RX slots. */
interface RxFrame {
  frame: Uint8Array;
  csumBlank: boolean;
}

/** One vif of the domain: device/vif/<devid> ↔ backend/vif/<domid>/<devid>. */
export class VifBackend {
  readonly frontend: string;
  readonly backend: string;
  /** Protocol violations by the frontend and refusals, in order (Linux's netdev_err lines). */
  readonly errors: string[] = [];
  /** Set by a fatal TX error (xenvif_fatal_tx_err): the vif moves nothing any more. */
  disabled = false;
  /** Every frame across the wire, both ways (pcap.ts). */
  readonly capture: CapturedFrame[] = [];
  /** Frames from the guest, and delivered to it; slots; drops. */
  txFrames = 0;
  txSlots = 0;
  rxFrames = 0;
  rxSlots = 0;
  rxQueueDrops = 0;
  wireDrops = 0;
  notifies = 0;
  /** The frontend's Initialised states seen (Linux ignores them) and its flags at connect. */
  sawInitialised = 0;
  rxNotify = false;
  frontendSg = false;
  /** Requests the frontend put on the TX ring before the backend was Connected, and RX buffers it had posted. */
  earlyTx = 0;
  rxPostedAtConnect = 0;
  private txMap?: GrantMapping;
  private rxMap?: GrantMapping;
  private txPort?: BackendEnd;
  private rxPort?: BackendEnd;
  private txReqCons = 0;
  private txRspPvt = 0;
  private rxReqCons = 0;
  private rxQueue: RxFrame[] = [];
  private txResponses = 0;
  private rxResponses = 0;
  private rxHostile = false;
  private connectedAt = 0n;
  private readonly rng: () => number;
  /** The frame held back in each direction ([to the peer, to the guest]): only a frame going the same way overtakes it,
   * so the peer's own send never releases a frame into the peer (re-entrantly). */
  private held: ({ frame: Uint8Array; toGuest: boolean; csumBlank: boolean } | undefined)[] = [undefined, undefined];
  private readonly peer?: Peer;
  private readonly faults: RingFaults;
  private readonly xb: XenbusFaults;
  private readonly port: WirePort;

  constructor(
    private readonly dom: Domain,
    readonly devid: number,
    readonly opts: VifOptions = {},
  ) {
    const d = dom.domid;
    this.frontend = `/local/domain/${d}/device/vif/${devid}`;
    this.backend = `/local/domain/0/backend/vif/${d}/${devid}`;
    this.faults = opts.faults ?? {};
    this.xb = opts.xenbus ?? {};
    this.rng = mulberry32(opts.wireFaults?.seed ?? 1);
    const w = opts.wire;
    this.peer = typeof w === "function" ? { receive: w } : w;
    this.port = {
      send: (frame, o) => this.fromPeer(frame, o?.csumBlank ?? false),
      after: (ms, fn) => this.dom.schedule(this.dom.monotonicNs() + BigInt(Math.round(ms * 1e6)), fn),
      now: () => Number(this.dom.monotonicNs() - this.connectedAt) / 1e6,
    };
    const xs = dom.xenstored;
    // What the toolstack writes before the guest starts (libxl_nic.c, libxl__set_xenstore_nic).
    toolstackDevice(xs, d, this.frontend, this.backend);
    const mac = opts.mac ?? GUEST_MAC.replace(/01$/, (devid + 1).toString(16).padStart(2, "0"));
    const fkeys: Record<string, string | undefined> = {
      handle: String(devid),
      mac,
      mtu: opts.mtu === null ? undefined : String(opts.mtu ?? 1500),
      trusted: "1",
      ...opts.frontendKeys,
    };
    for (const [k, v] of Object.entries(fkeys)) {
      if (v === undefined) xs.rm(`${this.frontend}/${k}`);
      else xs.write(`${this.frontend}/${k}`, v);
    }
    xs.write(`${this.backend}/mac`, mac);
    xs.write(`${this.backend}/bridge`, "xenbr0");
    xs.write(`${this.backend}/handle`, String(devid));
    xs.write(`${this.backend}/type`, "vif");
    // netback_probe(): the features, then InitWait once the frontend is Initialising.
    const features: Record<string, string | undefined> = {
      "feature-sg": "1",
      "feature-gso-tcpv4": "1",
      "feature-gso-tcpv6": "1",
      "feature-ipv6-csum-offload": "1",
      "feature-rx-copy": "1",
      "feature-rx-flip": "0",
      "feature-multicast-control": "1",
      "feature-dynamic-multicast-control": "1",
      "feature-split-event-channels": "1",
      "multi-queue-max-queues": "1",
      "feature-ctrl-ring": "1",
      ...opts.keys,
    };
    for (const [k, v] of Object.entries(features)) {
      if (v === undefined) xs.rm(`${this.backend}/${k}`);
      else xs.write(`${this.backend}/${k}`, v);
    }
    xs.write(`${this.backend}/state`, String(this.xb.stayInitialising ? XenbusState.Initialising : XenbusState.InitWait));
    xs.watch(`${this.frontend}/state`, () => this.frontendChanged());
  }

  state(): number {
    return Number(this.dom.xenstored.read(`${this.backend}/state`));
  }

  get connected(): boolean {
    return this.txMap !== undefined;
  }

  /** Frames waiting in the backend for RX slots. */
  get rxWaiting(): number {
    return this.rxQueue.length;
  }

  /** Sends a frame to the guest as the peer would (tests that script the wire by hand). */
  inject(frame: Uint8Array, opts?: { csumBlank?: boolean }): void {
    this.port.send(frame, opts);
  }

  // ---- xenbus (xenbus.c) ----

  private setState(s: number | string): void {
    this.dom.xenstored.write(`${this.backend}/state`, String(s));
  }

  private frontendChanged(): void {
    const fe = Number(this.dom.xenstored.read(`${this.frontend}/state`));
    const be = this.state();
    if (this.xb.neverConnect && fe === XenbusState.Connected) return;
    if (this.xb.neverClose && (fe === XenbusState.Closing || fe === XenbusState.Closed)) return;
    switch (fe) {
      case XenbusState.Initialised:
        this.sawInitialised++; // frontend_changed(): "case XenbusStateInitialised: break;"
        return;
      case XenbusState.Connected:
        if (be === XenbusState.InitWait) this.connect();
        return;
      case XenbusState.Closing:
        this.disconnect();
        if (be !== XenbusState.Closed) this.setState(XenbusState.Closing);
        return;
      case XenbusState.Closed:
        this.disconnect();
        this.setState(XenbusState.Closed);
        return;
    }
  }

  // xenbus_dev_fatal(): the reason logged, the backend Closing.
  private refuse(why: string): void {
    this.errors.push(why);
    this.setState(XenbusState.Closing);
  }

  private connect(): void {
    const xs = this.dom.xenstored;
    const fe = (k: string) => xs.read(`${this.frontend}/${k}`);
    const queues = fe("multi-queue-num-queues");
    if (queues !== undefined && queues !== "1") return this.refuse(`guest requested ${queues} queues, exceeding the maximum of 1.`);
    const mac = xs.read(`${this.backend}/mac`) ?? "";
    if (!/^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/.test(mac)) return this.refuse(`parsing ${this.backend}/mac`);
    // read_xenbus_vif_flags()
    const rxCopy = fe("request-rx-copy");
    if (rxCopy === undefined || !/^\d+$/.test(rxCopy) || Number(rxCopy) === 0)
      return this.refuse(
        `${this.frontend}/request-rx-copy is ${rxCopy === undefined ? "missing" : `"${rxCopy}"`}: this backend only copies into the frontend's buffers (EOPNOTSUPP)`,
      );
    this.rxNotify = fe("feature-rx-notify") === "1";
    this.frontendSg = fe("feature-sg") === "1";
    // connect_data_rings()
    const txRef = Number(fe("tx-ring-ref"));
    const rxRef = Number(fe("rx-ring-ref"));
    const split = fe("event-channel-tx") !== undefined && fe("event-channel-rx") !== undefined;
    const txPort = Number(split ? fe("event-channel-tx") : fe("event-channel"));
    const rxPort = Number(split ? fe("event-channel-rx") : txPort);
    try {
      if (!Number.isInteger(txRef) || !Number.isInteger(rxRef)) throw new Error(`reading ${this.frontend}/ring-ref`);
      if (!Number.isInteger(txPort) || !Number.isInteger(rxPort)) throw new Error(`reading ${this.frontend}/event-channel(-tx/rx)`);
      this.txMap = this.dom.gnttab.backendMap(txRef, false);
      this.rxMap = this.dom.gnttab.backendMap(rxRef, false);
      this.txPort = this.dom.evtchn.backendBind(txPort, () => this.service());
      this.rxPort = split ? this.dom.evtchn.backendBind(rxPort, () => this.service()) : this.txPort;
    } catch (e: any) {
      this.unmapRings();
      return this.refuse(`mapping shared-frames ${txRef}/${rxRef} port tx ${txPort} rx ${rxPort}: ${e.message}`);
    }
    // BACK_RING_ATTACH: start from the indices the frontend initialised.
    this.txReqCons = this.txRspPvt = this.u32(this.txMap, 8);
    this.rxReqCons = this.u32(this.rxMap, 8);
    this.earlyTx = (this.u32(this.txMap, 0) - this.txReqCons) >>> 0;
    this.rxPostedAtConnect = (this.u32(this.rxMap, 0) - this.rxReqCons) >>> 0;
    if (this.earlyTx) this.errors.push(`the frontend put ${this.earlyTx} TX requests on the ring before the backend was Connected`);
    this.connectedAt = this.dom.monotonicNs();
    this.setState(this.xb.connectedState ?? String(XenbusState.Connected));
    const starve = this.faults.rxStarveMs;
    if (starve) this.port.after(starve, () => this.serviceRx());
    this.peer?.start?.(this.port);
    this.service();
  }

  private unmapRings(): void {
    this.txMap?.unmap();
    this.rxMap?.unmap();
    this.txMap = this.rxMap = undefined;
  }

  // backend_disconnect(): the rings unmapped, the channels unbound, frames waiting dropped.
  private disconnect(): void {
    if (!this.txMap) return;
    this.unmapRings();
    this.txPort = this.rxPort = undefined;
    this.rxQueue = [];
  }

  // ---- the rings (io/ring.h) ----

  private u32(m: GrantMapping, off: number): number {
    return new DataView(m.read(off, 4).buffer).getUint32(0, true);
  }

  private setU32(m: GrantMapping, off: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    m.write(off, b);
  }

  private slot(idx: number, entry: number): number {
    return RING_HEADER + (idx & (RING_SLOTS - 1)) * entry;
  }

  // xenvif_fatal_tx_err(): "fatal error; disabling device", for good.
  private fatal(why: string): void {
    this.errors.push(`${why}; fatal error; disabling device`);
    this.disabled = true;
  }

  /** Runs on every notification: the TX ring, then frames waiting for RX slots. */
  service(): void {
    this.serviceTx();
    this.serviceRx();
  }

  // ---- guest transmit (netback.c) ----

  private readTx(idx: number): TxReq {
    const b = this.txMap!.read(this.slot(idx, TX_ENTRY), TX_ENTRY);
    const dv = new DataView(b.buffer);
    return {
      gref: dv.getUint32(0, true),
      offset: dv.getUint16(4, true),
      flags: dv.getUint16(6, true),
      id: dv.getUint16(8, true),
      size: dv.getUint16(10, true),
    };
  }

  private serviceTx(): void {
    const m = this.txMap;
    if (!m || this.disabled) return;
    for (;;) {
      const prod = this.u32(m, 0);
      while (!this.disabled && this.txReqCons !== prod) {
        const work = (prod - this.txReqCons) >>> 0;
        if (work > RING_SLOTS) {
          this.fatal(`Impossible number of requests. req_prod ${prod}, req_cons ${this.txReqCons}, size ${RING_SLOTS}`);
          break;
        }
        this.buildFrame(work);
      }
      this.pushTx();
      if (this.disabled) return;
      // RING_FINAL_CHECK_FOR_REQUESTS: ask to be notified at the next request, then look again.
      this.setU32(m, 4, this.txReqCons + 1);
      if (this.u32(m, 0) === this.txReqCons) return;
    }
  }

  // One frame: its first slot, its extra-info slots, its other slots (xenvif_tx_build_gops).
  private buildFrame(work: number): void {
    const first = this.readTx(this.txReqCons);
    this.txReqCons = (this.txReqCons + 1) >>> 0;
    work--;
    const extras: number[] = [];
    if (first.flags & NETTXF.extraInfo) {
      // xenvif_get_extras()
      for (let more = true; more;) {
        if (work-- <= 0) return this.fatal("Missing extra info");
        const b = this.txMap!.read(this.slot(this.txReqCons, TX_ENTRY), TX_ENTRY);
        this.txReqCons = (this.txReqCons + 1) >>> 0;
        if (b[0] === 0 || b[0] >= EXTRA_TYPE_MAX) return this.fatal(`Invalid extra type: ${b[0]}`);
        if (b[0] === 1 && (b[2] | (b[3] << 8)) === 0) return this.fatal("GSO size must not be zero.");
        extras.push(b[0]);
        more = (b[1] & 1) !== 0;
      }
    }
    // Multicast filter updates: a dummy request answered at once (we keep no filter).
    if (extras.includes(2) || extras.includes(3)) return this.respondTx(first.id, NETIF_RSP.okay, extras.length);
    // xenvif_count_requests()
    const slots: TxReq[] = [];
    let remaining = first.size;
    let dropErr = "";
    if (first.flags & NETTXF.moreData) {
      let txp: TxReq;
      do {
        // slots.length counts the slots after the first, as `slots` does in Linux.
        if (slots.length >= work) return this.fatal(`Asked for ${work} slots but exceeds this limit`);
        if (slots.length >= FATAL_SKB_SLOTS)
          return this.fatal(`Malicious frontend using ${slots.length} slots, threshold ${FATAL_SKB_SLOTS}`);
        if (!dropErr && slots.length >= LEGACY_SLOTS_MAX)
          dropErr = `Too many slots (${slots.length}) exceeding limit (${LEGACY_SLOTS_MAX}), dropping packet`;
        txp = this.readTx((this.txReqCons + slots.length) >>> 0);
        if (!dropErr && txp.size > remaining) dropErr = `Invalid tx request, slot size ${txp.size} > remaining size ${remaining}`;
        remaining = (remaining - txp.size) & 0xffff;
        slots.push(txp);
        if (txp.offset + txp.size > PAGE) return this.fatal(`Cross page boundary, txp->offset: ${txp.offset}, size: ${txp.size}`);
      } while (txp.flags & NETTXF.moreData);
    }
    this.txReqCons = (this.txReqCons + slots.length) >>> 0;
    const all = [{ ...first, size: remaining }, ...slots];
    this.txSlots += all.length;
    if (dropErr) return this.txErr(all, extras.length, dropErr);
    if (remaining < ETH_HLEN) return this.txErr(all, extras.length, `Bad packet size: ${remaining}`);
    // No crossing a page as the payload mustn't fragment.
    if (first.offset + remaining > PAGE)
      return this.fatal(`txreq.offset: ${first.offset}, size: ${remaining}, end: ${first.offset + remaining}`);
    // The data, copied out of the granted pages (the grant copy and maps of netback.c).
    const frame = new Uint8Array(all.reduce((n, s) => n + s.size, 0));
    let at = 0;
    for (const [i, s] of all.entries()) {
      let g: GrantMapping;
      try {
        g = this.dom.gnttab.backendMap(s.gref, true);
      } catch (e: any) {
        return this.txErr(all, extras.length, `Grant map of ${i}. frag failed! ref: ${s.gref}: ${e.message}`);
      }
      frame.set(g.read(s.offset, s.size), at);
      g.unmap();
      at += s.size;
    }
    const n = this.txFrames++;
    if (this.leaves(n)) return;
    for (const [i, s] of all.entries()) this.respondTx(s.id, NETIF_RSP.okay, i === 0 ? extras.length : 0);
    if (first.flags & NETTXF.csumBlank && !completeChecksum(frame)) {
      this.errors.push("Can't setup checksum in net_tx_action");
      return;
    }
    this.toWire(frame);
  }

  // xenvif_tx_err(): NETIF_RSP_ERROR on every slot of the frame.
  private txErr(all: TxReq[], extras: number, why: string): void {
    this.errors.push(why);
    for (const [i, s] of all.entries()) this.respondTx(s.id, NETIF_RSP.error, i === 0 ? extras : 0);
  }

  // Leaves Connected instead of answering TX frame n (XenbusFaults.leaveAt): the frame is lost.
  private leaves(n: number): boolean {
    if (this.xb.leaveAt !== n) return false;
    const xs = this.dom.xenstored;
    const v = this.xb.leaveWith === undefined ? String(XenbusState.Closing) : this.xb.leaveWith;
    if (v === null) xs.rm(`${this.backend}/state`);
    else xs.write(`${this.backend}/state`, v);
    return true;
  }

  // make_tx_response(): the slot's answer, then NETIF_RSP_NULL for each extra-info slot.
  private respondTx(id: number, status: number, extras: number): void {
    const m = this.txMap!;
    const f = this.faults;
    for (let e = -1; e < extras; e++) {
      const n = this.txResponses++;
      if (f.swallowTxFrom !== undefined && n >= f.swallowTxFrom) continue;
      const rsp = { id, status: e < 0 ? status : NETIF_RSP.null };
      f.mangleTx?.(rsp, n);
      const b = new Uint8Array(4);
      const dv = new DataView(b.buffer);
      dv.setUint16(0, rsp.id & 0xffff, true);
      dv.setInt16(2, rsp.status, true);
      m.write(this.slot(this.txRspPvt, TX_ENTRY), b);
      this.txRspPvt = (this.txRspPvt + 1) >>> 0;
      if (f.duplicateTx === n) {
        m.write(this.slot(this.txRspPvt, TX_ENTRY), b);
        this.txRspPvt = (this.txRspPvt + 1) >>> 0;
      }
    }
  }

  // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY on the TX ring.
  private pushTx(): void {
    const m = this.txMap;
    if (!m) return;
    const old = this.u32(m, 8);
    if (old === this.txRspPvt) return;
    this.setU32(m, 8, this.txRspPvt);
    if ((this.txRspPvt - this.u32(m, 12)) >>> 0 < (this.txRspPvt - old) >>> 0) {
      this.notifies++;
      this.txPort?.notify();
    }
  }

  // ---- the wire ----

  private faultsApply(toGuest: boolean): boolean {
    const d = this.opts.wireFaults?.direction ?? "both";
    return d === "both" || (d === "toGuest") === toGuest;
  }

  // A frame the guest sent goes to the peer, through the wire's faults.
  private toWire(frame: Uint8Array): void {
    this.capture.push({ atNs: this.dom.wallNs(), dir: "tx", frame });
    this.throughWire(frame, false, false);
  }

  // A frame from the peer goes to the guest, through the wire's faults.
  private fromPeer(frame: Uint8Array, csumBlank: boolean): void {
    this.throughWire(frame.slice(), true, csumBlank);
  }

  private throughWire(frame: Uint8Array, toGuest: boolean, csumBlank: boolean): void {
    const f = this.opts.wireFaults;
    if (!f || !this.faultsApply(toGuest)) return this.arrive(frame, toGuest, csumBlank);
    const r = this.rng;
    if (f.drop && r() < f.drop) {
      this.wireDrops++;
      return;
    }
    if (f.corrupt && r() < f.corrupt && frame.length > ETH_HLEN) {
      frame = frame.slice();
      const at = ETH_HLEN + Math.floor(r() * (frame.length - ETH_HLEN));
      frame[at] ^= 1 << Math.floor(r() * 8);
    }
    const copies = f.duplicate && r() < f.duplicate ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const way = toGuest ? 1 : 0;
      if (f.reorder && !this.held[way] && r() < f.reorder) {
        // Overtaken by the next frame the same way; or, when none comes, let out a little later.
        const h = (this.held[way] = { frame, toGuest, csumBlank });
        this.port.after(20, () => {
          if (this.held[way] !== h) return;
          this.held[way] = undefined;
          this.later(h.frame, h.toGuest, h.csumBlank);
        });
        continue;
      }
      this.later(frame, toGuest, csumBlank);
      const h = this.held[way];
      if (h) {
        this.held[way] = undefined;
        this.later(h.frame, h.toGuest, h.csumBlank);
      }
    }
  }

  private later(frame: Uint8Array, toGuest: boolean, csumBlank: boolean): void {
    const ms = this.opts.wireFaults?.delayMs ?? 0;
    if (ms > 0) this.port.after(ms, () => this.arrive(frame, toGuest, csumBlank));
    else this.arrive(frame, toGuest, csumBlank);
  }

  private arrive(frame: Uint8Array, toGuest: boolean, csumBlank: boolean): void {
    if (!toGuest) {
      const out = this.peer?.receive(frame, this.port);
      if (out) for (const o of out) this.port.send(o);
      return;
    }
    if (!this.txMap) return; // not connected: the bridge has nowhere to send it
    if (this.rxQueue.length >= (this.opts.rxQueueMax ?? 1024)) {
      this.rxQueueDrops++;
      return;
    }
    if (csumBlank) blankChecksum(frame);
    this.rxQueue.push({ frame, csumBlank });
    this.serviceRx();
  }

  // ---- guest receive (rx.c) ----

  private starving(): boolean {
    const f = this.faults;
    if (f.rxStarve) return true;
    return f.rxStarveMs !== undefined && this.dom.monotonicNs() - this.connectedAt < BigInt(Math.round(f.rxStarveMs * 1e6));
  }

  private serviceRx(): void {
    const m = this.rxMap;
    if (!m || this.disabled || this.rxHostile || this.starving()) return;
    const f = this.faults;
    let pushed = false;
    let extra = false;
    while (this.rxQueue.length && !extra) {
      const { frame, csumBlank } = this.rxQueue[0];
      const needed = Math.max(1, Math.ceil(frame.length / PAGE));
      // xenvif_rx_ring_slots_available(): enough requests, or ask to be told when there are.
      let prod = this.u32(m, 0);
      if ((prod - this.rxReqCons) >>> 0 > RING_SLOTS) {
        this.fatal(`Impossible number of RX requests. req_prod ${prod}, req_cons ${this.rxReqCons}`);
        break;
      }
      if ((prod - this.rxReqCons) >>> 0 < needed) {
        this.setU32(m, 4, prod + 1);
        prod = this.u32(m, 0);
        if ((prod - this.rxReqCons) >>> 0 < needed) break;
      }
      this.rxQueue.shift();
      this.capture.push({ atNs: this.dom.wallNs(), dir: "rx", frame });
      this.rxFrames++;
      for (let s = 0, at = 0; s < needed; s++) {
        const idx = this.rxReqCons;
        const b = m.read(this.slot(idx, RX_ENTRY), RX_ENTRY);
        const dv = new DataView(b.buffer);
        const id = dv.getUint16(0, true);
        const gref = dv.getUint32(4, true);
        const len = Math.min(PAGE, frame.length - at);
        let status = len;
        try {
          const g = this.dom.gnttab.backendMap(gref, false);
          g.write(0, frame.subarray(at, at + len));
          g.unmap();
        } catch (e: any) {
          this.errors.push(`RX grant copy to ref ${gref} failed: ${e.message}`);
          status = -1; // GNTST_general_error, as xenvif_rx_copy_flush() stores it
        }
        at += len;
        let flags = s < needed - 1 ? NETRXF.moreData : 0;
        if (s === 0 && csumBlank) flags |= NETRXF.csumBlank | NETRXF.dataValidated;
        const rsp = { id, offset: 0, flags, status };
        const n = this.rxResponses++;
        f.mangleRx?.(rsp, n);
        const o = new Uint8Array(8);
        const ov = new DataView(o.buffer);
        ov.setUint16(0, rsp.id & 0xffff, true);
        ov.setUint16(2, rsp.offset & 0xffff, true);
        ov.setUint16(4, rsp.flags & 0xffff, true);
        ov.setInt16(6, rsp.status, true);
        // The response goes in the request's own slot (rx.c: RING_GET_RESPONSE at req_cons).
        m.write(this.slot(idx, RX_ENTRY), o);
        this.rxReqCons = (idx + 1) >>> 0;
        this.rxSlots++;
        if (f.extraRx === n) extra = true;
      }
      pushed = true;
    }
    if (!pushed) return;
    // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: rsp_prod_pvt = req_cons.
    const old = this.u32(m, 8);
    this.setU32(m, 8, this.rxReqCons);
    if (extra) {
      // RingFaults.extraRx: rsp_prod one past everything posted; this ring serves nothing more.
      this.setU32(m, 8, this.u32(m, 0) + 1);
      this.rxHostile = true;
    }
    if ((this.rxReqCons - this.u32(m, 12)) >>> 0 < (this.rxReqCons - old) >>> 0) {
      this.notifies++;
      this.rxPort?.notify();
    }
  }
}

// ---- checksums (RFC 1071) of IPv4 TCP/UDP frames ----

function sum16(d: Uint8Array, from: number, to: number, s = 0): number {
  let i = from;
  for (; i + 1 < to; i += 2) s += (d[i] << 8) | d[i + 1];
  if (i < to) s += d[i] << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Where the TCP/UDP checksum field of an unfragmented IPv4 frame is, with the segment; undefined for anything else. */
export function transportOf(f: Uint8Array): { start: number; end: number; field: number; proto: number } | undefined {
  if (f.length < ETH_HLEN + 20 || ((f[12] << 8) | f[13]) !== 0x0800 || f[14] >> 4 !== 4) return undefined;
  const ihl = (f[14] & 0xf) * 4;
  const total = (f[16] << 8) | f[17];
  if (ihl < 20 || total < ihl || ETH_HLEN + total > f.length || ((f[20] << 8) | f[21]) & 0x3fff) return undefined;
  const proto = f[23];
  const start = ETH_HLEN + ihl;
  const end = ETH_HLEN + total;
  if (proto === 6 && end - start >= 20) return { start, end, field: start + 16, proto };
  if (proto === 17 && end - start >= 8) return { start, end, field: start + 6, proto };
  return undefined;
}

function pseudo(f: Uint8Array, t: { start: number; end: number; proto: number }): number {
  return sum16(f, 26, 34) + t.proto + (t.end - t.start);
}

/** CHECKSUM_PARTIAL as dom0's stack leaves it: the field holds the folded pseudo-header sum. */
export function blankChecksum(f: Uint8Array): boolean {
  const t = transportOf(f);
  if (!t) return false;
  const p = fold(pseudo(f, t));
  f[t.field] = p >> 8;
  f[t.field + 1] = p & 0xff;
  return true;
}

/** Completes a CHECKSUM_PARTIAL frame: the sum over the segment as it is (field included), complemented. */
export function completeChecksum(f: Uint8Array): boolean {
  const t = transportOf(f);
  if (!t) return false;
  let c = ~fold(sum16(f, t.start, t.end)) & 0xffff;
  if (t.proto === 17 && c === 0) c = 0xffff;
  f[t.field] = c >> 8;
  f[t.field + 1] = c & 0xff;
  return true;
}

/** Whether the frame's TCP/UDP checksum verifies (a UDP checksum of 0 is "none"). */
export function transportChecksumOk(f: Uint8Array): boolean {
  const t = transportOf(f);
  if (!t) return false;
  if (t.proto === 17 && f[t.field] === 0 && f[t.field + 1] === 0) return true;
  return fold(sum16(f, t.start, t.end, pseudo(f, t))) === 0xffff;
}
