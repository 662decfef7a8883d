// The netfront data path (xen/include/public/io/netif.h over xen/ring.ts): a
// TX and an RX ring of one page and 256 slots each, one event channel for both.
// Negotiation lives in netfront-xs.ts; the public API in index.ts.
//
// Pages. Every slot id owns one I/O page, granted once and kept until close:
// RX pages writable (the backend copies frames into them), TX pages read-only
// (the backend reads our frames). A frame to send is copied into the pages of
// its slots, 4096 bytes per slot at offset 0, so no TX slot ever crosses its
// page (Linux's xen-netback disables the vif for good when one does). TX pages
// are allocated on first use; all 256 RX pages are granted and posted before
// the handshake publishes the rings, and each one is posted again as soon as
// the frame it held is copied out.
//
// Ids. A TX request's id is its slot id, a bounds-checked index into the table
// of frames in flight; one response comes back per slot. An RX request's id is
// its ring index & 255, and its response must sit in the same slot (netif.h);
// anything else stops the device.
//
// Validation. Everything on the rings is the backend's: a response is read once,
// its id checked against the table, its status against NETIF_RSP_*, an RX
// fragment's offset + size against its page and a frame's total against 65535
// (XEN_NETIF_MAX_TX_SIZE). A violation fails the device (fatal): every queued
// and in-flight frame rejects with the reason, receive() waits reject, and the
// device takes no more frames. NETIF_RSP_ERROR and _DROPPED are not violations:
// they fail one frame (TX), and any negative RX status (a NETIF_RSP_* or, from
// Linux's netback, a failed grant copy's GNTST_*) drops one frame, counted.
//
// Deadlines. A frame on the TX ring has requestTimeoutNs (30 s) for its answers;
// a backend that loses one is broken, and the device fails. Waiting for received
// frames has no deadline here: a quiet network is not a fault (receive() can be
// wrapped in sched.timeout()).
import * as abi from "../abi";
import * as iopage from "../iopage";
import { Future, Sleep, State, Task, sleep, spawn } from "../sched";
import { FrontRing, initShared } from "../xen/ring";
import { Channel, EventHandler, allocUnbound } from "../xen/evtchn";
import * as n from "./netif";

/** How long a frame may wait on the TX ring for its answers (as blkfront's requests). */
export const REQUEST_TIMEOUT_NS: i64 = 30_000_000_000;
/** Frames send() holds while the TX ring is full; more are refused (back-pressure: writable()). */
export const TX_QUEUE_MAX: i32 = 512;
/** Received frames kept while nobody takes them (receive(), no handler); more are dropped, counted. */
export const RX_QUEUE_MAX: i32 = 1024;
/** Slots of each one-page ring: __RING_SIZE for 12-byte TX and 8-byte RX entries. */
export const RING_SLOTS: i32 = 256;

const PAGE: i32 = 4096;

/** A received frame: its bytes, and what the backend says about its checksum. */
export class Frame {
  constructor(
    public data: Uint8Array,
    /** NETRXF_csum_blank and NETRXF_data_validated as received. */
    public flags: u16,
  ) {}

  /**
   * NETRXF_csum_blank: the TCP/UDP checksum field holds only the pseudo-header
   * sum (checksum offload in dom0's stack). The data is intact (the backend
   * validated it): fill the field (net.fillChecksum) or skip checking it.
   */
  get csumBlank(): bool {
    return (this.flags & n.NETRXF_CSUM_BLANK) != 0;
  }

  /** NETRXF_data_validated: the backend checked the transport checksum (or the frame never left the host). */
  get dataValidated(): bool {
    return (this.flags & n.NETRXF_DATA_VALIDATED) != 0;
  }
}

/** Receives each frame as it arrives (Device.onFrame), in the event loop; it must not block. */
export abstract class FrameHandler {
  abstract onFrame(f: Frame): void;
}

/** One frame sent: resolves (value = its bytes) when the backend has answered every slot OKAY, else rejects. */
export class TxOp extends Future {
  /** Slots on the ring not yet answered. */
  left: i32 = 0;
  /** The first status that was not NETIF_RSP_OKAY. */
  status: i16 = n.RSP_OKAY;
  timer: Sleep | null = null;
  /** The frame while it waits for ring slots (a copy). */
  data: Uint8Array | null = null;
  /** clock_monotonic() when sent and when answered. */
  queuedNs: i64 = 0;
  doneNs: i64 = 0;
  constructor(
    public size: i32,
    /** NETTXF_csum_blank / NETTXF_data_validated for the first slot. */
    public flags: u16,
  ) {
    super();
  }

  /** Slots the frame takes: one per 4096 bytes. */
  get slots(): i32 {
    return (this.size + PAGE - 1) / PAGE;
  }

  /** "a frame of 1514 bytes", for errors. */
  get what(): string {
    return "a frame of " + this.size.toString() + " bytes";
  }
}

/** A wait for the next received frame (Netfront.receive()); `frame` once resolved. */
export class RecvOp extends Future {
  frame: Frame | null = null;
  constructor(public front: Netfront) {
    super();
  }
  protected onCancel(): void {
    this.front.forget(this);
  }
}

/** Fails the device when a frame's deadline passes (a waiter on the frame's timer). */
class Deadline extends Future {
  constructor(
    public front: Netfront,
    public op: TxOp,
  ) {
    super();
  }
  wake(from: Future): void {
    if (from.ok) this.front.expire(this.op);
  }
}

/** Puts what was sent in one turn of the event loop on the ring together: one notification per batch. */
class Kick extends Task {
  constructor(public front: Netfront) {
    super();
  }
  step(): void {
    this.front.kick = null;
    this.front.pump();
    this.finish();
  }
}

/** "30 s", "200 ms": a duration for error messages. */
export function duration(ns: i64): string {
  if (ns % 1_000_000_000 == 0) return (ns / 1_000_000_000).toString() + " s";
  if (ns % 1_000_000 == 0) return (ns / 1_000_000).toString() + " ms";
  return (ns / 1_000).toString() + " µs";
}

export class Netfront extends EventHandler {
  txRing: FrontRing;
  rxRing: FrontRing;
  /** The TX and RX ring pages ([0], [1]) and their grants (-1: none, or ended). */
  ringPages: StaticArray<usize> = new StaticArray<usize>(2);
  ringRefs: StaticArray<i32> = new StaticArray<i32>(2);
  ch: Channel | null = null;
  /** Frames in flight by TX slot id; the id is an index, checked before use. */
  private txOps: StaticArray<TxOp | null> = new StaticArray<TxOp | null>(RING_SLOTS);
  /** Each TX and RX slot id's page (0: none yet) and its grant (-1: none, or ended). */
  private txPages: StaticArray<usize> = new StaticArray<usize>(RING_SLOTS);
  private txRefs: StaticArray<i32> = new StaticArray<i32>(RING_SLOTS);
  private rxPages: StaticArray<usize> = new StaticArray<usize>(RING_SLOTS);
  private rxRefs: StaticArray<i32> = new StaticArray<i32>(RING_SLOTS);
  private freeTx: Array<i32> = new Array<i32>();
  private queue: Array<TxOp> = new Array<TxOp>();
  private idleWaits: Array<Future> = new Array<Future>();
  private writableWaits: Array<Future> = new Array<Future>();
  private rxQueue: Array<Frame> = new Array<Frame>();
  private recvWaits: Array<RecvOp> = new Array<RecvOp>();
  /** The frame being reassembled from RX fragments: their slot ids, offsets and sizes. */
  private fragIds: StaticArray<i32> = new StaticArray<i32>(n.MAX_SLOTS);
  private fragOffsets: StaticArray<i32> = new StaticArray<i32>(n.MAX_SLOTS);
  private fragSizes: StaticArray<i32> = new StaticArray<i32>(n.MAX_SLOTS);
  private frags: i32 = 0;
  private fragTotal: i32 = 0;
  private fragFlags: u16 = 0;
  /** A fragment's NETIF_RSP_* error (the frame is dropped), or 0. */
  private fragError: i16 = 0;
  private txRsp: n.TxResponse = new n.TxResponse();
  private rxRsp: n.RxResponse = new n.RxResponse();

  /** Set when the backend broke the protocol or lost a frame, or the device closed: it takes no more frames. */
  broken: string = "";
  /** Set by the handshake once the backend is Connected: no frame goes out before. */
  connected: bool = false;
  /** The backend's feature-sg: frames over one page (several TX slots) may be sent. */
  sg: bool = false;
  handler: FrameHandler | null = null;
  requestTimeoutNs: i64 = REQUEST_TIMEOUT_NS;
  txQueueMax: i32 = TX_QUEUE_MAX;
  rxQueueMax: i32 = RX_QUEUE_MAX;
  kick: Kick | null = null;

  // Counters a test or app can read.
  txFrames: u64 = 0;
  txBytes: u64 = 0;
  /** Frames the backend answered NETIF_RSP_ERROR or _DROPPED. */
  txErrors: u64 = 0;
  txSlotsInFlight: i32 = 0;
  rxFrames: u64 = 0;
  rxBytes: u64 = 0;
  /** Frames with a NETIF_RSP_* error fragment, or shorter than an Ethernet header: dropped. */
  rxErrors: u64 = 0;
  /** Frames dropped because nobody took them (rxQueueMax). */
  rxDropped: u64 = 0;
  rxCsumBlank: u64 = 0;
  /** Notifications sent to the backend, and events received. */
  notifies: u64 = 0;
  events: u64 = 0;
  /** Pages given up to a backend that kept them mapped past the close (never reused). */
  sharedPages: i32 = 0;

  constructor(
    /** "vif 0", the prefix of every error. */
    public name: string,
    public backendDomid: i32,
  ) {
    super();
    // Rings over no memory yet (setup() places them): a closed device before setup has nothing to end.
    this.txRing = new FrontRing(0, n.TX_ENTRY_SIZE);
    this.rxRing = new FrontRing(0, n.RX_ENTRY_SIZE);
    for (let i = 0; i < RING_SLOTS; i++) {
      unchecked((this.txRefs[i] = -1));
      unchecked((this.rxRefs[i] = -1));
    }
    this.ringRefs[0] = -1;
    this.ringRefs[1] = -1;
    for (let i = RING_SLOTS - 1; i >= 0; i--) this.freeTx.push(i);
  }

  /**
   * Allocates and grants both rings, allocates the event channel, and grants
   * and posts all 256 RX pages. "" or why it failed (what was set up is undone by teardown()).
   */
  setup(): string {
    const domid = this.backendDomid;
    const tx = iopage.alloc();
    const rx = tx == 0 ? 0 : iopage.alloc();
    if (rx == 0) {
      if (tx != 0) iopage.release(tx);
      return this.name + ": no memory for the rings";
    }
    this.ringPages[0] = tx;
    this.ringPages[1] = rx;
    initShared(tx);
    initShared(rx);
    this.txRing = new FrontRing(tx, n.TX_ENTRY_SIZE);
    this.rxRing = new FrontRing(rx, n.RX_ENTRY_SIZE);
    const t = abi.gnttab_grant_access(domid, tx, 0);
    if (t < 0) return this.name + ": granting the TX ring to domain " + domid.toString() + " failed (errno " + (-t).toString() + ")";
    this.ringRefs[0] = t;
    const r = abi.gnttab_grant_access(domid, rx, 0);
    if (r < 0) return this.name + ": granting the RX ring to domain " + domid.toString() + " failed (errno " + (-r).toString() + ")";
    this.ringRefs[1] = r;
    const bind = allocUnbound(domid);
    if (!bind.channel) return this.name + ": allocating an event channel for domain " + domid.toString() + " failed (errno " + bind.errno.toString() + ")";
    const ch = bind.channel!;
    ch.handler = this;
    this.ch = ch;
    for (let id = 0; id < RING_SLOTS; id++) {
      const p = iopage.alloc();
      if (p == 0) return this.name + ": no memory for receive buffer " + id.toString() + " of " + RING_SLOTS.toString();
      unchecked((this.rxPages[id] = p));
      const g = abi.gnttab_grant_access(domid, p, 0);
      if (g < 0) return this.name + ": granting receive buffer " + id.toString() + " failed (errno " + (-g).toString() + ")";
      unchecked((this.rxRefs[id] = g));
    }
    // Post every buffer now: the backend may deliver as soon as it connects.
    this.refillRx(false);
    return "";
  }

  // ---- transmit ----

  /**
   * Sends the `len` bytes at `ptr` as one frame, copied before this returns.
   * flags: NETTXF_csum_blank (the TCP/UDP checksum is left to the backend) and
   * NETTXF_data_validated. The op resolves when the backend has answered.
   */
  sendFrom(ptr: usize, len: i32, flags: u16 = 0): TxOp {
    const op = new TxOp(len, flags & (n.NETTXF_CSUM_BLANK | n.NETTXF_DATA_VALIDATED));
    op.queuedNs = abi.clock_monotonic();
    if (this.broken.length > 0) return this.refuse(op, this.broken);
    if (!this.connected) return this.refuse(op, "the backend is not Connected yet: no frame is sent before it is");
    if (len < n.ETH_HLEN) return this.refuse(op, op.what + " is shorter than an Ethernet header (" + n.ETH_HLEN.toString() + " bytes)");
    if (len > n.MAX_FRAME) return this.refuse(op, op.what + " is longer than netif.h allows (" + n.MAX_FRAME.toString() + " bytes)");
    const slots = op.slots;
    if (slots > 1 && !this.sg)
      return this.refuse(op, op.what + " needs " + slots.toString() + " slots, but the backend offers no feature-sg (at most " + PAGE.toString() + " bytes per frame)");
    if (this.queue.length == 0 && this.canPlace(slots)) {
      if (!this.place(op, ptr)) return op;
    } else {
      if (this.queue.length >= this.txQueueMax)
        return this.refuse(op, "the transmit queue is full (" + this.txQueueMax.toString() + " frames wait for ring slots): wait for writable()");
      const copy = new Uint8Array(len);
      memory.copy(copy.dataStart, ptr, <usize>len);
      op.data = copy;
      this.queue.push(op);
    }
    if (!this.kick) this.kick = spawn(new Kick(this));
    return op;
  }

  /** Frames waiting for ring slots. */
  queued(): i32 {
    return this.queue.length;
  }

  /** Resolves when no frame waits for ring slots (at once if none does); rejects if the device fails. */
  writable(): Future {
    const f = new Future();
    if (this.broken.length > 0) f.reject(this.name + ": " + this.broken);
    else if (this.queue.length == 0) f.resolve();
    else this.writableWaits.push(f);
    return f;
  }

  /** Resolves when nothing is queued or in flight (before a disconnect). */
  idle(): Future {
    const f = new Future();
    this.idleWaits.push(f);
    this.checkIdle();
    return f;
  }

  private refuse(op: TxOp, why: string): TxOp {
    op.reject(this.name + ": " + why);
    return op;
  }

  private canPlace(slots: i32): bool {
    return this.freeTx.length >= slots && <i32>this.txRing.freeRequests() >= slots;
  }

  /** Puts queued frames on the ring while slots are free, then notifies once. */
  pump(): void {
    while (this.queue.length > 0 && this.broken.length == 0) {
      const op = this.queue[0];
      if (op.state != State.Pending) {
        this.queue.shift(); // cancelled while it waited
        continue;
      }
      if (!this.canPlace(op.slots)) break;
      this.queue.shift();
      const d = op.data!;
      op.data = null;
      this.place(op, d.dataStart);
    }
    if (this.broken.length == 0 && this.txRing.pushRequests()) {
      this.notifies++;
      this.ch!.notify();
    }
    if (this.queue.length == 0 && this.writableWaits.length > 0) {
      const ws = this.writableWaits;
      this.writableWaits = new Array<Future>();
      for (let i = 0; i < ws.length; i++) ws[i].resolve();
    }
    this.checkIdle();
  }

  // Copies the frame into the pages of free slots and writes its requests (not yet pushed); false (op rejected) if a page cannot be had.
  private place(op: TxOp, src: usize): bool {
    const slots = op.slots;
    const ids = new StaticArray<i32>(slots);
    for (let k = 0; k < slots; k++) {
      const id = this.freeTx.pop();
      ids[k] = id;
      const why = this.txPage(id);
      if (why.length > 0) {
        for (let j = k; j >= 0; j--) this.freeTx.push(ids[j]);
        this.refuse(op, op.what + ": " + why);
        return false;
      }
    }
    const len = op.size;
    for (let k = 0; k < slots; k++) {
      const id = ids[k];
      const off = k * PAGE;
      const chunk = min(PAGE, len - off);
      memory.copy(unchecked(this.txPages[id]), src + <usize>off, <usize>chunk);
      const slot = this.txRing.nextRequest();
      let flags: u16 = k == 0 ? op.flags : 0;
      if (k < slots - 1) flags |= n.NETTXF_MORE_DATA;
      // The first slot's size is the whole frame's; it carries what the others do not (netif.h).
      n.writeTxRequest(slot, <u32>unchecked(this.txRefs[id]), 0, flags, <u16>id, <u16>(k == 0 ? len : chunk));
      unchecked((this.txOps[id] = op));
    }
    op.left = slots;
    this.txSlotsInFlight += slots;
    const t = sleep(this.requestTimeoutNs);
    t.addWaiter(new Deadline(this, op));
    op.timer = t;
    return true;
  }

  // The TX page of slot id, allocated and granted read-only on first use; "" or why not.
  private txPage(id: i32): string {
    if (unchecked(this.txRefs[id]) >= 0) return "";
    let p = unchecked(this.txPages[id]);
    if (p == 0) {
      p = iopage.alloc();
      if (p == 0) return "no memory for a transmit page";
      unchecked((this.txPages[id] = p));
    }
    const g = abi.gnttab_grant_access(this.backendDomid, p, 1);
    if (g < 0) return "granting a transmit page failed (errno " + (-g).toString() + ")";
    unchecked((this.txRefs[id] = g));
    return "";
  }

  // ---- responses ----

  onEvent(ch: Channel): void {
    this.events++;
    this.complete();
  }

  /** Takes every response on both rings, then refills and pumps. */
  complete(): void {
    if (this.broken.length > 0) return;
    this.completeTx();
    if (this.broken.length > 0) return;
    this.completeRx();
    if (this.broken.length > 0) return;
    this.pump();
  }

  private completeTx(): void {
    const ring = this.txRing;
    for (;;) {
      let k = ring.unconsumedResponses();
      if (k < 0) return this.fatal("the backend published more TX responses than TX requests (rsp_prod is corrupt)");
      while (k-- > 0) {
        const rsp = this.txRsp.read(ring.nextResponse());
        const id = <i32>rsp.id;
        const status = rsp.status;
        if (id >= RING_SLOTS) return this.fatal("TX response id " + id.toString() + " is out of range (the TX ring has " + RING_SLOTS.toString() + " slots)");
        const op = unchecked(this.txOps[id]);
        if (!op) return this.fatal("TX response id " + id.toString() + " names no frame in flight");
        if (status == n.RSP_NULL)
          return this.fatal("TX response id " + id.toString() + " has status 1 (NETIF_RSP_NULL), which answers extra-info slots, and we send none");
        if (status != n.RSP_OKAY && status != n.RSP_ERROR && status != n.RSP_DROPPED)
          return this.fatal("TX response id " + id.toString() + " has status " + status.toString() + ", which is no NETIF_RSP_* value");
        unchecked((this.txOps[id] = null));
        this.freeTx.push(id);
        this.txSlotsInFlight--;
        if (status != n.RSP_OKAY && op.status == n.RSP_OKAY) op.status = status;
        if (--op.left == 0) this.finish(op);
      }
      if (ring.finalCheckForResponses() == 0) break;
    }
  }

  private finish(op: TxOp): void {
    op.doneNs = abi.clock_monotonic();
    stopTimer(op);
    const s = op.status;
    if (s == n.RSP_OKAY) {
      this.txFrames++;
      this.txBytes += <u64>op.size;
      op.resolve(op.size);
      return;
    }
    this.txErrors++;
    if (s == n.RSP_DROPPED) op.reject(this.name + ": " + op.what + ": the backend dropped it (NETIF_RSP_DROPPED)");
    else op.reject(this.name + ": " + op.what + ": the backend refused it (NETIF_RSP_ERROR; its kernel log says why)");
  }

  private completeRx(): void {
    const ring = this.rxRing;
    for (;;) {
      let k = ring.unconsumedResponses();
      if (k < 0) return this.fatal("the backend published more RX responses than receive buffers posted (rsp_prod is corrupt)");
      while (k-- > 0) {
        const want = <i32>(ring.rspCons & <u32>(RING_SLOTS - 1));
        const rsp = this.rxRsp.read(ring.nextResponse());
        const id = <i32>rsp.id;
        const status = <i32>rsp.status;
        const pre = "RX response id " + id.toString();
        if (id >= RING_SLOTS) return this.fatal(pre + " is out of range (the RX ring has " + RING_SLOTS.toString() + " slots)");
        if (id != want) return this.fatal(pre + " is in slot " + want.toString() + ": netif.h puts each response in its request's slot");
        if ((rsp.flags & n.NETRXF_EXTRA_INFO) != 0) return this.fatal(pre + " announces extra-info slots, which we never asked for (no GSO, no XDP headroom)");
        const off = <i32>rsp.offset;
        const size = status < 0 ? 0 : status;
        if (status >= 0 && off + size > PAGE)
          return this.fatal(pre + ": offset " + off.toString() + " + size " + size.toString() + " runs past the end of its " + PAGE.toString() + "-byte page");
        if (this.frags == n.MAX_SLOTS) return this.fatal("an RX frame spans more than " + n.MAX_SLOTS.toString() + " slots (XEN_NETIF_NR_SLOTS_MIN)");
        if (this.fragTotal + size > n.MAX_FRAME)
          return this.fatal("an RX frame is longer than " + n.MAX_FRAME.toString() + " bytes (XEN_NETIF_MAX_TX_SIZE), at response id " + id.toString());
        const f = this.frags++;
        if (f == 0) this.fragFlags = rsp.flags;
        unchecked((this.fragIds[f] = id));
        unchecked((this.fragOffsets[f] = off));
        unchecked((this.fragSizes[f] = size));
        this.fragTotal += size;
        // Any negative status fails the fragment: NETIF_RSP_*, or a grant copy's GNTST_* (Linux's rx.c puts those there).
        if (status < 0 && this.fragError == 0) this.fragError = <i16>status;
        if ((rsp.flags & n.NETRXF_MORE_DATA) == 0) this.deliver();
      }
      if (ring.finalCheckForResponses() == 0) break;
    }
    this.refillRx(true);
  }

  // The last fragment arrived: copy the frame out of its pages (they are posted again after this) and hand it up.
  private deliver(): void {
    const total = this.fragTotal;
    const error = this.fragError;
    const nf = this.frags;
    const flags = this.fragFlags & (n.NETRXF_CSUM_BLANK | n.NETRXF_DATA_VALIDATED);
    this.frags = 0;
    this.fragTotal = 0;
    this.fragError = 0;
    if (error != 0 || total < n.ETH_HLEN) {
      this.rxErrors++;
      return;
    }
    const data = new Uint8Array(total);
    let at: usize = 0;
    for (let i = 0; i < nf; i++) {
      const size = unchecked(this.fragSizes[i]);
      memory.copy(data.dataStart + at, unchecked(this.rxPages[unchecked(this.fragIds[i])]) + <usize>unchecked(this.fragOffsets[i]), <usize>size);
      at += <usize>size;
    }
    this.rxFrames++;
    this.rxBytes += <u64>total;
    if ((flags & n.NETRXF_CSUM_BLANK) != 0) this.rxCsumBlank++;
    const frame = new Frame(data, flags);
    const h = this.handler;
    if (h) {
      h.onFrame(frame);
      return;
    }
    if (this.recvWaits.length > 0) {
      const w = this.recvWaits.shift();
      w.frame = frame;
      w.resolve(total);
      return;
    }
    if (this.rxQueue.length >= this.rxQueueMax) {
      this.rxDropped++;
      return;
    }
    this.rxQueue.push(frame);
  }

  // Posts every RX slot whose page is free again (not held by a frame still being reassembled); notifies if asked.
  private refillRx(notify: bool): void {
    const ring = this.rxRing;
    let pushed = false;
    // Slot id j is free once the response at ring index j - 256 was consumed and its frame copied out.
    while (<i32>(ring.reqProdPvt - ring.rspCons) + this.frags < RING_SLOTS) {
      const id = <i32>(ring.reqProdPvt & <u32>(RING_SLOTS - 1));
      n.writeRxRequest(ring.nextRequest(), <u16>id, <u32>unchecked(this.rxRefs[id]));
      pushed = true;
    }
    if (pushed && ring.pushRequests() && notify) {
      this.notifies++;
      this.ch!.notify();
    }
  }

  // ---- receive ----

  /** The next received frame: at once if one is queued; rejects if the device fails. */
  receive(): RecvOp {
    const w = new RecvOp(this);
    if (this.rxQueue.length > 0) {
      const f = this.rxQueue.shift();
      w.frame = f;
      w.resolve(f.data.length);
    } else if (this.broken.length > 0) w.reject(this.name + ": " + this.broken);
    else this.recvWaits.push(w);
    return w;
  }

  /** Hands every frame to h from now on, those already queued first (null: back to receive()). */
  setHandler(h: FrameHandler | null): void {
    this.handler = h;
    if (!h) return;
    const q = this.rxQueue;
    this.rxQueue = new Array<Frame>();
    for (let i = 0; i < q.length; i++) h.onFrame(q[i]);
  }

  /** Frames received and not yet taken. */
  pending(): i32 {
    return this.rxQueue.length;
  }

  /** A cancelled receive() stops waiting. */
  forget(w: RecvOp): void {
    const i = this.recvWaits.indexOf(w);
    if (i >= 0) this.recvWaits.splice(i, 1);
  }

  // ---- failure and teardown ----

  /** A frame's deadline passed: the backend lost it, so the device fails. */
  expire(op: TxOp): void {
    op.timer = null;
    if (this.broken.length > 0 || !op.pending) return;
    this.complete(); // an answer already on the ring counts, whatever the clock says
    if (this.broken.length > 0 || !op.pending) return;
    this.fatal(op.what + ": no response from the backend in " + duration(this.requestTimeoutNs));
  }

  /** Stops the device: every queued and in-flight frame and every receive() wait fails with the reason. */
  fatal(why: string): void {
    if (this.broken.length > 0) return;
    this.broken = why;
    const msg = this.name + ": " + why;
    const q = this.queue;
    this.queue = new Array<TxOp>();
    for (let i = 0; i < q.length; i++) q[i].reject(msg);
    // TX pages are the device's own (copies), so in-flight frames can fail now; their pages stay granted until close.
    for (let i = 0; i < RING_SLOTS; i++) {
      const op = unchecked(this.txOps[i]);
      if (!op) continue;
      unchecked((this.txOps[i] = null));
      stopTimer(op);
      op.reject(msg);
    }
    this.txSlotsInFlight = 0;
    const rw = this.recvWaits;
    this.recvWaits = new Array<RecvOp>();
    for (let i = 0; i < rw.length; i++) rw[i].reject(msg);
    const ww = this.writableWaits;
    this.writableWaits = new Array<Future>();
    for (let i = 0; i < ww.length; i++) ww[i].reject(msg);
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.idleWaits.length == 0 || this.txSlotsInFlight > 0 || this.queue.length > 0) return;
    const ws = this.idleWaits;
    this.idleWaits = new Array<Future>();
    for (let i = 0; i < ws.length; i++) ws[i].resolve();
  }

  /**
   * Ends every grant not ended yet and frees each page whose grant ended (rings,
   * RX and TX pages); with giveUp, the pages still mapped are left to the
   * backend for good (counted in sharedPages). True when nothing is left granted.
   */
  endGrants(giveUp: bool): bool {
    let left = false;
    for (let id = 0; id < RING_SLOTS; id++) {
      if (!endPage(this.rxRefs, this.rxPages, id)) left = true;
      if (!endPage(this.txRefs, this.txPages, id)) left = true;
    }
    for (let i = 0; i < 2; i++) if (!endPage(this.ringRefs, this.ringPages, i)) left = true;
    if (left && giveUp) {
      this.sharedPages += giveUpPages(this.rxPages) + giveUpPages(this.txPages) + giveUpPages(this.ringPages);
      left = false;
    }
    return !left;
  }

  /** Undoes setup() after a failed handshake: the channel closed, the grants ended, the pages freed (or given up). */
  teardown(): void {
    this.fatal("the device is closed");
    const ch = this.ch;
    if (ch) ch.close();
    this.endGrants(true);
  }
}

// Ends page id's grant and frees the page; false while the backend still maps it.
function endPage(refs: StaticArray<i32>, pages: StaticArray<usize>, id: i32): bool {
  const g = unchecked(refs[id]);
  if (g >= 0) {
    if (abi.gnttab_end_access(g) != 0) return false;
    unchecked((refs[id] = -1));
  }
  const p = unchecked(pages[id]);
  if (p != 0) {
    iopage.release(p);
    unchecked((pages[id] = 0));
  }
  return true;
}

// Forgets the pages left (still granted): they are the backend's for good. Returns how many.
function giveUpPages(pages: StaticArray<usize>): i32 {
  let k = 0;
  for (let i = 0; i < pages.length; i++) {
    if (unchecked(pages[i]) == 0) continue;
    unchecked((pages[i] = 0));
    k++;
  }
  return k;
}

function stopTimer(op: TxOp): void {
  const t = op.timer;
  op.timer = null;
  if (t) t.cancel();
}
