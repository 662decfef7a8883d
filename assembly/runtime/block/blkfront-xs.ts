// Blkfront's xenbus negotiation (xen/include/public/io/blkif.h, "Feature and
// Parameter Negotiation"), over the generic handshake in xen/xenbus.ts:
//
//   1. Read device/vbd/<id>/backend-id: the domain to grant the ring to.
//   2. Initialise and grant the ring's 2^order pages, allocate an event channel.
//   3. xenbus connect: at InitWait read feature-max-indirect-segments and
//      max-ring-page-order; publish ring-ref, event-channel and protocol with
//      state Initialised; wait for the backend's Connected.
//   4. Read what the backend writes when it connects (the Key table): sectors,
//      sector-size, info (VDISK_READONLY), feature-flush-cache, feature-barrier,
//      physical-sector-size. Optional keys get blkif.h's defaults; every value
//      is parsed strictly and checked against its row of the table.
//
// Connect.step() runs these as the named stages of ConnectStage, top to bottom.
//
// A multi-page ring needs its order before Initialised, so max-ring-page-order
// is read once right after backend-id (backends write it at probe, before
// InitWait) and checked again at InitWait: an offer that shrank is refused.
// We use up to MAX_RING_ORDER, on contiguous I/O pages; order 0 publishes
// ring-ref, a larger one ring-page-order and ring-ref0..N-1.
//
// Deadlines (OpenOptions, defaults in xen/xenbus.ts and xen/xenstore.ts): each
// xenstore request 10 s, each backend state of the handshake 30 s, the close
// 5 s, and after our Closed the backend's unmapping of the ring UNMAP_WAIT_NS.
// Refused backend values close the device again; a backend that then does not
// close costs the close deadline, and the refusal is reported all the same.
// Once connected, the backend leaving Connected (Closing, Closed, its state
// node gone, a state that is no XenbusState) fails the device and every
// request in flight (Blkfront.fatal) with the reason.
import * as abi from "../abi";
import * as iopage from "../iopage";
import { AllSettled, Future, State, Task, sleep } from "../sched";
import { allocUnbound, Channel } from "../xen/evtchn";
import { initShared } from "../xen/ring";
import { CLOSE_TIMEOUT_NS, CONNECT_TIMEOUT_NS, Frontend, StateWait } from "../xen/xenbus";
import { XsReply, Xenstore, seconds } from "../xen/xenstore";
import { Blkfront, MAX_INDIRECT_SEGMENTS } from "./blkfront";
import * as b from "./blkif";

/** What the device offers, as negotiated and validated (block.Info, Device.info()). */
export class Info {
  devid: string = "";
  /** The backend's xenstore path, and its domain (the one the ring and pages are granted to). */
  backend: string = "";
  backendDomid: i32 = 0;
  /** Capacity, in sectors of sectorSize bytes. */
  sectors: u64 = 0;
  sectorSize: u32 = 512;
  physicalSectorSize: u32 = 512;
  /** The backend's "info" key: VDISK_* bits (blkif.h). */
  vdiskInfo: u32 = 0;
  /** VDISK_READONLY: writes are refused by the frontend. */
  readOnly: bool = false;
  /** feature-flush-cache and feature-barrier. */
  flush: bool = false;
  barrier: bool = false;
  /** Pages one request may carry: 11, or more with indirect descriptors. */
  maxPages: i32 = b.MAX_SEGMENTS;
  /** feature-max-indirect-segments as offered, and what we use (0: direct requests only). */
  indirectOffered: u32 = 0;
  indirectSegments: i32 = 0;
  /** Requests the ring holds at once. */
  ringEntries: u32 = 0;
  /** The ring order in use, and max-ring-page-order as offered. */
  ringPageOrder: u32 = 0;
  maxRingPageOrder: u32 = 0;
}

/** How long a disconnect waits for the backend to unmap the ring after Closed (Linux blkback unmaps on our Closed). */
export const UNMAP_WAIT_NS: i64 = 10_000_000_000;
const UNMAP_POLL_NS: i64 = 10_000_000;

/** Deadlines of open() and close(); the defaults are the module constants. */
export class OpenOptions {
  /** Each backend state the handshake waits for (InitWait, Connected). */
  connectTimeoutNs: i64 = CONNECT_TIMEOUT_NS;
  /** The backend's answer to our Closing. */
  closeTimeoutNs: i64 = CLOSE_TIMEOUT_NS;
  /** The backend's unmapping of the ring after our Closed. */
  unmapTimeoutNs: i64 = UNMAP_WAIT_NS;
}

/** Fails the device when the backend leaves Connected (the frontend's monitor rejects; close() cancels it). */
class BackendLost extends Future {
  constructor(
    public front: Blkfront,
    public monitor: StateWait,
  ) {
    super();
  }
  wake(from: Future): void {
    if (from.state == State.Rejected) this.front.fatal(this.monitor.why);
  }
}

/** The largest ring we ask for: 4 pages, 128 requests in flight. */
export const MAX_RING_ORDER: u32 = 2;

/** Parses a decimal u64 exactly into out[0] ("", signs, spaces and overflow are errors); false on error. */
function parseU64(s: string, out: StaticArray<u64>): bool {
  if (s.length == 0 || s.length > 20) return false;
  let v: u64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    const d = <u64>(c - 48);
    if (v > (U64.MAX_VALUE - d) / 10) return false;
    v = v * 10 + d;
  }
  out[0] = v;
  return true;
}

/** The keys the backend writes when it connects (blkif.h), in the order they are read and checked: rows of the tables below. */
enum Key {
  Sectors,
  SectorSize,
  Info,
  Flush,
  Barrier,
  PhysicalSectorSize,
  Count,
}

/** KEY_LIMITS flags: blkif.h requires the key; the value must be a power of two. */
const REQUIRED: u64 = 1;
const POW2: u64 = 2;

// The connect-key table, in Key order, as static data (no code builds it): each
// value is a decimal from min to max (a power of two if POW2); absent or empty,
// it takes the default (blkif.h's), unless REQUIRED. A refused value reads
// `vbd 51712: backend key <key> = "<value>" <the value ...>`. @lazy: compiled
// only into an app that opens a block device.
@lazy const KEY_TEXT: StaticArray<string> = [
  // key                  refused: the value ...
  "sectors",              "is not a number",
  "sector-size",          "is not a power of two from 512 to 4096",
  "info",                 "is not a 32-bit number",
  "feature-flush-cache",  "is neither 0 nor 1",
  "feature-barrier",      "is neither 0 nor 1",
  "physical-sector-size", "is not a power of two ≥ sector-size",
];
@lazy const KEY_LIMITS: StaticArray<u64> = [
  // default min  max            flags
  0,         0,   U64.MAX_VALUE, REQUIRED, // sectors
  512,       512, 4096,          POW2,     // sector-size
  0,         0,   0xffffffff,    0,        // info
  0,         0,   1,             0,        // feature-flush-cache
  0,         0,   1,             0,        // feature-barrier
  0,         512, 65536,         POW2,     // physical-sector-size: absent (0) means sector-size; never below it (checked after the table)
];

// The tables' cells for key k (k < Key.Count: the tables hold a row for every Key).
@inline function keyName(k: i32): string {
  return unchecked(KEY_TEXT[2 * k]);
}
@inline function keyMustBe(k: i32): string {
  return unchecked(KEY_TEXT[2 * k + 1]);
}
@inline function keyLimit(k: i32, column: i32): u64 {
  return unchecked(KEY_LIMITS[4 * k + column]);
}

/** The stages of Connect, in the order they run; each handles what the one before it awaited. */
enum ConnectStage {
  /** Read device/vbd/<id>/backend-id: the domain to grant the ring to. */
  Start,
  /** Check the backend-id; read the backend's path. */
  BackendId,
  /** Read the backend's max-ring-page-order (written at probe, before InitWait). */
  BackendPath,
  /** Set up the ring at that order, then run the xenbus handshake (xen/xenbus.ts) to Connected. */
  RingOrder,
  /** Connected: check the InitWait offers, read the keys the backend wrote on connecting. */
  Handshake,
  /** Check those keys (the Key table) and make the Blkfront. */
  ConnectKeys,
  /** A backend value was refused: the device is being closed again; then reject with the refusal. */
  Refused,
}

/** The open handshake; resolves with `front` and `info` set, or rejects naming the device and the key. */
export class Connect extends Task {
  stage: ConnectStage = ConnectStage.Start;
  name: string;
  idReq: XsReply | null = null;
  keyReqs: Array<XsReply> = new Array<XsReply>();
  fe: Frontend;
  /** Scratch for parseU64. */
  num: StaticArray<u64> = new StaticArray<u64>(1);
  ringPage: usize = 0;
  ringOrder: u32 = 0;
  ringRefs: Array<i32> = new Array<i32>();
  backendReq: XsReply | null = null;
  orderReq: XsReply | null = null;
  ch: Channel | null = null;
  info: Info = new Info();
  front: Blkfront | null = null;
  /** Why the backend's values were refused (the device is being closed). */
  refusal: string = "";

  constructor(
    public xs: Xenstore,
    public devid: string,
    public opts: OpenOptions = new OpenOptions(),
  ) {
    super();
    this.name = "vbd " + devid;
    this.fe = new Frontend(xs, "vbd", devid);
    this.fe.connectTimeoutNs = opts.connectTimeoutNs;
    this.fe.closeTimeoutNs = opts.closeTimeoutNs;
    this.info.devid = devid;
  }

  step(): void {
    const a = this.awaited;
    switch (this.stage) {
      case ConnectStage.Start: {
        this.stage = ConnectStage.BackendId;
        this.await((this.idReq = this.xs.read(this.fe.path + "/backend-id")));
        return;
      }
      case ConnectStage.BackendId: {
        const r = this.idReq!;
        if (!r.ok) {
          if (r.errno == abi.ENOENT) return this.bail(this.fe.path + ": no backend-id — is there a disk line in the xl config?");
          return this.bail(this.fe.path + "/backend-id: " + r.error);
        }
        if (!parseU64(r.text(), this.num) || this.num[0] >= 0x7ff0) return this.bail(this.keyError("backend-id", r.text(), "is not a domain id"));
        this.info.backendDomid = <i32>this.num[0];
        this.stage = ConnectStage.BackendPath;
        this.await((this.backendReq = this.xs.read(this.fe.path + "/backend")));
        return;
      }
      case ConnectStage.BackendPath: {
        // Without a backend path the xenbus handshake below gives the clear error; order 0 meanwhile.
        const r = this.backendReq!;
        if (!r.ok && r.errno != abi.ENOENT && r.errno != abi.EACCES) return this.bail(this.fe.path + ": " + r.error);
        this.stage = ConnectStage.RingOrder;
        if (r.ok) this.await((this.orderReq = this.xs.read(r.text() + "/max-ring-page-order")));
        else this.await(r);
        return;
      }
      case ConnectStage.RingOrder: {
        const r = this.orderReq;
        let want: u32 = 0;
        if (r && !r.ok && r.errno != abi.ENOENT) return this.bail(this.fe.path + ": " + r.error);
        if (r && r.ok) {
          if (!parseU64(r.text(), this.num) || this.num[0] > 16) return this.bail(this.keyError("max-ring-page-order", r.text(), "is not a ring order (0..16)"));
          want = <u32>min<u64>(this.num[0], <u64>MAX_RING_ORDER);
        }
        if (!this.setupRing(want)) return;
        this.stage = ConnectStage.Handshake;
        this.await(this.fe.connect());
        return;
      }
      case ConnectStage.Handshake: {
        if (a!.failed) return this.bail(a!.error);
        this.info.backend = this.fe.backend;
        if (!this.readOffers()) return;
        this.stage = ConnectStage.ConnectKeys;
        for (let k = 0; k < Key.Count; k++) this.keyReqs.push(this.xs.read(this.fe.backend + "/" + keyName(k)));
        this.await(new AllSettled(changetype<Array<Future>>(this.keyReqs)));
        return;
      }
      case ConnectStage.ConnectKeys: {
        if (!this.readConnectKeys()) return;
        // The backend left Connected while we read its keys: no device, and close it again.
        const lost = this.fe.monitor;
        if (lost && lost.state == State.Rejected) {
          this.refused(lost.error);
          return;
        }
        const n = this.info;
        const front = new Blkfront(this.name, this.ringPage, this.ringOrder, this.ch!, n.backendDomid, <u16>I32.parseInt(this.devid), n.indirectSegments);
        n.maxPages = front.maxSegments();
        n.ringEntries = front.ring.nrEnts;
        this.front = front;
        const m = this.fe.monitor;
        if (m) m.addWaiter(new BackendLost(front, m));
        this.finish();
        return;
      }
      case ConnectStage.Refused: {
        // The refusal stands whether or not the backend closed in time.
        this.bail(a!.failed ? this.refusal + " (closing the device: " + a!.error + ")" : this.refusal);
        return;
      }
    }
  }

  // A zeroed shared ring of 2^order contiguous pages (order 0 if none are free), granted writable, and its event channel.
  private setupRing(want: u32): bool {
    const domid = this.info.backendDomid;
    let order = want;
    let page = contiguousPages(1 << order);
    if (page == 0 && order > 0) page = contiguousPages(1 << (order = 0));
    if (page == 0) {
      this.bail(this.name + ": no memory for the ring page");
      return false;
    }
    this.ringPage = page;
    this.ringOrder = order;
    this.info.ringPageOrder = order;
    initShared(page);
    for (let i = 0; i < 1 << order; i++) {
      const ref = abi.gnttab_grant_access(domid, page + (<usize>i << 12), 0);
      if (ref < 0) {
        this.bail(this.name + ": granting the ring to domain " + domid.toString() + " failed (errno " + (-ref).toString() + ")");
        return false;
      }
      this.ringRefs.push(ref);
    }
    const bind = allocUnbound(domid);
    if (!bind.channel) {
      this.bail(this.name + ": allocating an event channel for domain " + domid.toString() + " failed (errno " + bind.errno.toString() + ")");
      return false;
    }
    this.ch = bind.channel;
    this.fe.feature("feature-max-indirect-segments", "0").feature("max-ring-page-order", "0");
    if (order == 0) this.fe.publish("ring-ref", this.ringRefs[0].toString());
    else {
      this.fe.publish("ring-page-order", order.toString());
      for (let i = 0; i < this.ringRefs.length; i++) this.fe.publish("ring-ref" + i.toString(), this.ringRefs[i].toString());
    }
    this.fe.publish("event-channel", bind.channel!.port.toString()).publish("protocol", "x86_64-abi");
    return true;
  }

  // The InitWait offers: indirect segments (clamped to ours) and the ring order (reported).
  private readOffers(): bool {
    const n = this.info;
    const v = this.num;
    const ind = this.fe.featureValue("feature-max-indirect-segments");
    if (!parseU64(ind, v)) return this.keyFail("feature-max-indirect-segments", ind, "is not a number");
    n.indirectOffered = <u32>min<u64>(v[0], 0xffffffff);
    n.indirectSegments = v[0] > <u64>b.MAX_SEGMENTS ? <i32>min<u64>(v[0], <u64>MAX_INDIRECT_SEGMENTS) : 0;
    const ord = this.fe.featureValue("max-ring-page-order");
    if (!parseU64(ord, v) || v[0] > 16) return this.keyFail("max-ring-page-order", ord, "is not a ring order (0..16)");
    n.maxRingPageOrder = <u32>v[0];
    if (n.ringPageOrder > n.maxRingPageOrder)
      return this.keyFail("max-ring-page-order", ord, "is below the order " + n.ringPageOrder.toString() + " it offered before InitWait");
    return true;
  }

  // The keys the backend wrote on connecting, checked against the key table in
  // Key order, with the checks that need two keys where the second is known.
  private readConnectKeys(): bool {
    const text = new Array<string>(); // as written, "" when absent
    for (let i = 0; i < this.keyReqs.length; i++) {
      const r = this.keyReqs[i];
      if (r.ok) text.push(r.text());
      else if (r.errno == abi.ENOENT) text.push("");
      else return this.refused(this.fe.backend + "/" + keyName(i) + ": " + r.error);
    }
    const v = new StaticArray<u64>(Key.Count);
    if (!this.checkKeys(text, v, Key.Sectors, Key.Info)) return false;
    const sectors = v[Key.Sectors];
    const sectorSize = v[Key.SectorSize];
    // The capacity in bytes must fit a u64 (sectors × sector-size).
    if (sectors > U64.MAX_VALUE / sectorSize) return this.keyFail("sectors", text[Key.Sectors], "overflows a 64-bit byte count");
    if (!this.checkKeys(text, v, Key.Info, Key.Count)) return false;
    // physical-sector-size: absent (def 0) is the same as sector-size, and it is never below it.
    let pss = v[Key.PhysicalSectorSize];
    if (pss == 0) pss = sectorSize;
    else if (pss < sectorSize) return this.keyFail(keyName(Key.PhysicalSectorSize), text[Key.PhysicalSectorSize], keyMustBe(Key.PhysicalSectorSize));
    const n = this.info;
    n.sectors = sectors;
    n.sectorSize = <u32>sectorSize;
    n.vdiskInfo = <u32>v[Key.Info];
    n.readOnly = (n.vdiskInfo & b.VDISK_READONLY) != 0;
    n.flush = v[Key.Flush] == 1;
    n.barrier = v[Key.Barrier] == 1;
    n.physicalSectorSize = <u32>pss;
    return true;
  }

  // Keys [from, to) of the table: each value parsed strictly into v, or its default; false once one is refused.
  private checkKeys(text: Array<string>, v: StaticArray<u64>, from: i32, to: i32): bool {
    const num = this.num;
    for (let k = from; k < to; k++) {
      const s = text[k];
      const flags = keyLimit(k, 3);
      if (s == "") {
        if (flags & REQUIRED) return this.refused(this.name + ": the backend wrote no " + keyName(k) + " key (blkif.h requires it)");
        v[k] = keyLimit(k, 0);
        continue;
      }
      if (!parseU64(s, num) || num[0] < keyLimit(k, 1) || num[0] > keyLimit(k, 2) || (flags & POW2 && popcnt(num[0]) != 1)) return this.keyFail(keyName(k), s, keyMustBe(k));
      v[k] = num[0];
    }
    return true;
  }

  /** "vbd 51712: backend key sectors = "12ab" is not a number". */
  private keyError(key: string, value: string, why: string): string {
    return this.name + ": backend key " + key + " = \"" + value + "\" " + why;
  }

  private keyFail(key: string, value: string, why: string): bool {
    return this.refused(this.keyError(key, value, why));
  }

  // After the handshake: close the device again (so the backend does not wait on us), then fail.
  private refused(msg: string): bool {
    this.refusal = msg;
    this.stage = ConnectStage.Refused;
    this.await(this.fe.close());
    return false;
  }

  // Releases what the handshake set up, then rejects.
  private bail(msg: string): void {
    const ch = this.ch;
    if (ch) ch.close();
    this.ch = null;
    if (endRing(this.ringRefs, this.ringPage, this.ringOrder)) this.ringRefs = new Array<i32>();
    this.ringPage = 0;
    this.fail(msg);
  }
}

/** n contiguous I/O pages (the address of the first), or 0. Pages tried and not used are given back. */
function contiguousPages(n: i32): usize {
  const spare = new Array<usize>();
  let first: usize = 0;
  // The free list may be fragmented; once it is used up, memory.grow hands out pages in address order.
  for (let attempt = 0; attempt < 8 && first == 0; attempt++) {
    const got = new Array<usize>();
    for (let i = 0; i < n; i++) {
      const p = iopage.alloc();
      if (p == 0) break;
      got.push(p);
    }
    let ok = got.length == n;
    for (let i = 1; i < got.length; i++) if (got[i] != got[0] + (<usize>i << 12)) ok = false;
    if (ok) first = got[0];
    else for (let i = 0; i < got.length; i++) spare.push(got[i]);
    if (got.length < n) break; // out of memory
  }
  for (let i = 0; i < spare.length; i++) iopage.release(spare[i]);
  return first;
}

/** Ends the ring's grants and frees its pages; false (nothing freed) while the backend still maps one. */
export function endRing(refs: Array<i32>, page: usize, order: u32): bool {
  let mapped = false;
  const left = new Array<i32>();
  for (let i = 0; i < refs.length; i++) {
    const rc = abi.gnttab_end_access(refs[i]);
    if (rc == -abi.EBUSY) {
      mapped = true;
      left.push(refs[i]);
    }
  }
  refs.length = 0;
  for (let i = 0; i < left.length; i++) refs.push(left[i]);
  if (mapped) return false;
  if (page != 0) for (let i = 0; i < 1 << order; i++) iopage.release(page + (<usize>i << 12));
  return true;
}

/** The stages of Disconnect, in the order they run. */
enum DisconnectStage {
  /** Wait until no request is queued or in flight. */
  Drain,
  /** xenbus Closing → Closed (xen/xenbus.ts, with its deadline). */
  Close,
  /** Closed: fail the device for late callers, close the event channel, end the ring's grants. */
  Closed,
  /** The backend still maps the ring: poll until it unmaps it, or unmapWaitNs passes. */
  Unmap,
}

/** The orderly disconnect: drain, xenbus Closing → Closed, then end the ring grant once the backend unmapped it. */
export class Disconnect extends Task {
  stage: DisconnectStage = DisconnectStage.Drain;
  closeError: string = "";
  waited: i64 = 0;
  constructor(
    public front: Blkfront,
    public fe: Frontend,
    public ringRefs: Array<i32>,
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
        f.ch.close();
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

  // The backend unmaps the ring when it sees our Closed, which may be a little later: poll end_access.
  private tryEnd(): void {
    const f = this.front;
    const done = endRing(this.ringRefs, f.ringPage, f.ringOrder);
    if (!done && this.waited < this.unmapWaitNs) {
      this.waited += UNMAP_POLL_NS;
      this.await(sleep(UNMAP_POLL_NS));
      return;
    }
    f.releasePages();
    if (this.closeError.length > 0) return this.fail(this.closeError);
    if (!done) return this.fail(f.name + ": the backend still maps the ring " + seconds(this.unmapWaitNs) + " after closing");
    this.finish();
  }
}
