// The blkfront data path (xen/include/public/io/blkif.h over xen/ring.ts):
// requests carry a slot index as their id, pages are granted per request and
// the grants ended at the response, and each completion settles a BlockOp.
// The backend is another domain: response ids are bounds-checked indices into
// the slot table and must name a request in flight with the same operation;
// anything else stops the device with a clear error instead of trapping.
// Negotiation lives in blkfront-xs.ts; the public API in index.ts.
//
// Deadlines and failure. Each request on the ring has a deadline
// (requestTimeoutNs, REQUEST_TIMEOUT_NS by default). A request the backend has
// not answered by then fails the whole device, like a protocol violation: the
// backend is broken, and a write it still holds could land after a newer write
// to the same sectors if we went on. A failed device takes no more requests and
// reads no more responses, so a late answer can never be taken for a new
// request, and slot ids are never reused. Pages are the backend's while it may
// map them: failing the device ends each in-flight request's grants; a request
// whose pages the backend still maps settles only when it unmaps them, or after
// unmapWaitNs with `shared` set (its pages then stay granted, and the caller
// must never reuse them).
import * as abi from "../abi";
import * as iopage from "../iopage";
import { Future, Sleep, State, Task, sleep, spawn } from "../sched";
import { FrontRing, PAGE } from "../xen/ring";
import { Channel, EventHandler } from "../xen/evtchn";
import * as b from "./blkif";

/** How long a request may wait on the ring for its answer (Linux's block-layer default, 30 s). */
export const REQUEST_TIMEOUT_NS: i64 = 30_000_000_000;
/** After a failure, how long the device waits for the backend to unmap in-flight pages before giving them up. */
export const UNMAP_WAIT_NS: i64 = 5_000_000_000;
const UNMAP_POLL_NS: i64 = 10_000_000;

/** One request: resolves (value = bytes moved) when the backend answers OKAY, else rejects. */
export class BlockOp extends Future {
  /** Slot index while in flight, else -1. */
  id: i32 = -1;
  /** Grant refs: the data pages', then the indirect page's; -1 once ended. */
  grants: Array<i32> = new Array<i32>();
  indirect: bool = false;
  /**
   * True while the backend may access the pages (from the ring until their grants
   * end). A settled op with `shared` still true belongs to a failed device whose
   * backend kept its pages: they MUST NOT be reused, returned to a pool or freed.
   */
  shared: bool = false;
  /** The deadline while on the ring. */
  timer: Sleep | null = null;
  /** clock_monotonic() when queued and when completed (latency measurements). */
  queuedNs: i64 = 0;
  doneNs: i64 = 0;
  constructor(
    public op: u8,
    /** Start, in 512-byte ring sectors. */
    public sector: u64,
    /** Length, in 512-byte ring sectors (0 for a flush). */
    public nsec: u32,
    public pages: Array<usize>,
    /** "write of sector 8+16" — the request named in device units, for errors. */
    public what: string,
  ) {
    super();
  }
}

/** Fails the device when a request's deadline passes (a waiter on the request's timer). */
class Deadline extends Future {
  constructor(
    public front: Blkfront,
    public r: BlockOp,
  ) {
    super();
  }
  wake(from: Future): void {
    if (from.ok) this.front.expire(this.r);
  }
}

/** After a failure: polls until the backend unmaps the pages of the requests left, or gives them up. */
class Reclaim extends Task {
  deadline: i64;
  constructor(public front: Blkfront) {
    super();
    this.deadline = abi.clock_monotonic() + front.unmapWaitNs;
  }
  step(): void {
    if (this.front.reclaim(abi.clock_monotonic() >= this.deadline)) return this.finish();
    this.await(sleep(UNMAP_POLL_NS));
  }
}

/** "30 s", "200 ms": a duration for error messages. */
export function duration(ns: i64): string {
  if (ns % 1_000_000_000 == 0) return (ns / 1_000_000_000).toString() + " s";
  if (ns % 1_000_000 == 0) return (ns / 1_000_000).toString() + " ms";
  return (ns / 1_000).toString() + " µs";
}

/** Puts what was submitted in one turn of the event loop on the ring together: one notification, a batch for the backend. */
class Kick extends Task {
  constructor(public front: Blkfront) {
    super();
  }
  step(): void {
    this.front.kick = null;
    this.front.pump();
    this.finish();
  }
}

/** Segments of one indirect request we are prepared to send (one indirect page). */
export const MAX_INDIRECT_SEGMENTS: i32 = 256;

export class Blkfront extends EventHandler {
  readonly ring: FrontRing;
  /** In-flight requests by id; the id is an index, checked before use. */
  private slots: StaticArray<BlockOp | null>;
  private freeIds: Array<i32> = new Array<i32>();
  /** Indirect pages per slot, allocated on first use and kept. */
  private indirectPages: StaticArray<usize>;
  private queue: Array<BlockOp> = new Array<BlockOp>();
  private idleWaits: Array<Future> = new Array<Future>();
  /** The response being looked at (one copy out of the ring, reused). */
  private rsp: b.Response = new b.Response();
  /** Set when the backend broke the protocol or lost a request: the device takes no more requests. */
  broken: string = "";
  /** How long a request may stay on the ring unanswered before the device fails. */
  requestTimeoutNs: i64 = REQUEST_TIMEOUT_NS;
  /** After a failure, how long to wait for the backend to unmap in-flight pages. */
  unmapWaitNs: i64 = UNMAP_WAIT_NS;
  /** Pages given up to a failed backend that kept them mapped (never reused). */
  sharedPages: i32 = 0;
  inFlight: i32 = 0;
  submitted: u64 = 0;
  completed: u64 = 0;
  notifies: u64 = 0;
  /** The pending Kick, if any. */
  kick: Kick | null = null;

  constructor(
    /** "vbd 51712", the prefix of every error. */
    public name: string,
    /** The first of the ring's 2^ringOrder contiguous pages. */
    public ringPage: usize,
    public ringOrder: u32,
    public ch: Channel,
    public backendDomid: i32,
    public handle: u16,
    /** Segments per indirect request (0: the backend offers none). */
    public indirectSegments: i32,
  ) {
    super();
    // blkif.h "ring-page-order": 2^order pages, the same layout with more slots.
    const ring = new FrontRing(ringPage, b.ENTRY_SIZE, PAGE << ringOrder);
    const n = <i32>ring.nrEnts;
    this.ring = ring;
    this.slots = new StaticArray<BlockOp | null>(n);
    this.indirectPages = new StaticArray<usize>(n);
    for (let i = n - 1; i >= 0; i--) this.freeIds.push(i);
    ch.handler = this;
  }

  /** Pages one request may carry. */
  maxSegments(): i32 {
    return this.indirectSegments > b.MAX_SEGMENTS ? this.indirectSegments : b.MAX_SEGMENTS;
  }

  /** Queues a request; it goes on the ring as soon as a slot is free. */
  submit(r: BlockOp): BlockOp {
    if (this.broken.length > 0) {
      r.reject(this.name + ": " + this.broken);
      return r;
    }
    r.queuedNs = abi.clock_monotonic();
    this.queue.push(r);
    if (!this.kick) this.kick = spawn(new Kick(this));
    return r;
  }

  /** Resolves when nothing is queued or in flight (before a disconnect). */
  idle(): Future {
    const f = new Future();
    this.idleWaits.push(f);
    this.checkIdle();
    return f;
  }

  onEvent(ch: Channel): void {
    this.complete();
  }

  /** Puts queued requests on the ring while slots are free, then notifies once. */
  pump(): void {
    let pushed = false;
    while (this.queue.length > 0 && this.freeIds.length > 0 && this.ring.freeRequests() > 0 && this.broken.length == 0) {
      const r = this.queue.shift();
      if (r.state != State.Pending) continue; // cancelled before it reached the ring
      if (this.place(r)) pushed = true;
    }
    if (pushed && this.ring.pushRequests()) {
      this.notifies++;
      this.ch.notify();
    }
    this.checkIdle();
  }

  // Grants the pages and writes one ring entry; false (and r rejected) when a grant fails.
  private place(r: BlockOp): bool {
    const backendReads = r.op != b.OP_READ; // the backend only reads our pages for writes
    const n = r.pages.length;
    for (let i = 0; i < n; i++) {
      const ref = abi.gnttab_grant_access(this.backendDomid, r.pages[i], backendReads ? 1 : 0);
      if (ref < 0) {
        this.endGrants(r);
        r.reject(this.name + ": " + r.what + ": granting page " + i.toString() + " failed (errno " + (-ref).toString() + ")");
        return false;
      }
      r.grants.push(ref);
    }
    const id = this.freeIds.pop();
    if (n > b.MAX_SEGMENTS && !this.placeIndirect(r, id)) {
      this.freeIds.push(id);
      this.endGrants(r);
      return false;
    }
    const slot = this.ring.nextRequest();
    if (n > b.MAX_SEGMENTS) {
      // The indirect page's grant follows the data grants.
      b.writeIndirectRequest(slot, r.op, <u16>n, this.handle, <u64>id, r.sector, <u32>r.grants[n]);
      r.indirect = true;
    } else {
      b.writeRequest(slot, r.op, <u8>n, this.handle, <u64>id, r.sector);
      for (let i = 0; i < n; i++) this.segment(b.segmentOf(slot, i), r, i);
    }
    r.id = id;
    r.shared = true;
    const t = sleep(this.requestTimeoutNs);
    t.addWaiter(new Deadline(this, r));
    r.timer = t;
    unchecked((this.slots[id] = r));
    this.inFlight++;
    this.submitted++;
    return true;
  }

  // Fills the slot's indirect page with the segments and grants it read-only; false on failure.
  private placeIndirect(r: BlockOp, id: i32): bool {
    let page = unchecked(this.indirectPages[id]);
    if (page == 0) {
      page = iopage.alloc();
      if (page == 0) {
        r.reject(this.name + ": " + r.what + ": no memory for an indirect page");
        return false;
      }
      unchecked((this.indirectPages[id] = page));
    }
    for (let i = 0; i < r.pages.length; i++) this.segment(b.indirectSegmentOf(page, i), r, i);
    const ref = abi.gnttab_grant_access(this.backendDomid, page, 1);
    if (ref < 0) {
      r.reject(this.name + ": " + r.what + ": granting the indirect page failed (errno " + (-ref).toString() + ")");
      return false;
    }
    r.grants.push(ref);
    return true;
  }

  // struct blkif_request_segment for page i: whole pages, the last one possibly partial.
  private segment(at: usize, r: BlockOp, i: i32): void {
    const left = r.nsec - <u32>i * b.SECTORS_PER_PAGE;
    b.writeSegment(at, <u32>r.grants[i], 0, <u8>(min(left, b.SECTORS_PER_PAGE) - 1));
  }

  /** Takes every response on the ring, settles its request, then refills the ring. */
  complete(): void {
    if (this.broken.length > 0) return;
    for (;;) {
      let n = this.ring.unconsumedResponses();
      if (n < 0) return this.fatal("the backend published more responses than requests (rsp_prod is corrupt)");
      while (n-- > 0) {
        const rsp = this.rsp.read(this.ring.nextResponse());
        const id = rsp.id;
        const op = rsp.operation;
        const status = rsp.status;
        if (id >= <u64>this.slots.length)
          return this.fatal("response id " + id.toString() + " is out of range (the ring has " + this.slots.length.toString() + " slots)");
        const r = unchecked(this.slots[<i32>id]);
        if (!r) return this.fatal("response id " + id.toString() + " names no request in flight");
        if (op != r.op && !(r.indirect && op == b.OP_INDIRECT))
          return this.fatal("response id " + id.toString() + " is for a " + b.opName(op) + ", but the request was a " + b.opName(r.op));
        this.finish(r, status);
        if (this.broken.length > 0) return;
      }
      if (this.ring.finalCheckForResponses() == 0) break;
    }
    this.pump();
  }

  private finish(r: BlockOp, status: i16): void {
    const id = r.id;
    r.doneNs = abi.clock_monotonic();
    stopTimer(r);
    // Pages still mapped are not ours yet: the request keeps its slot, and fatal() reclaims it.
    if (!this.endGrants(r)) return this.fatal("the backend answered " + r.what + " (request " + id.toString() + ") but still maps its pages");
    this.release(r);
    this.completed++;
    this.freeIds.push(id);
    if (status == b.RSP_OKAY) r.resolve(<i64>r.nsec << b.SECTOR_SHIFT);
    else if (status == b.RSP_EOPNOTSUPP) r.reject(this.name + ": " + r.what + ": the backend does not support this operation (BLKIF_RSP_EOPNOTSUPP)");
    else if (status == b.RSP_ERROR) r.reject(this.name + ": " + r.what + ": the backend reported an I/O error (BLKIF_RSP_ERROR)");
    else r.reject(this.name + ": " + r.what + ": the backend answered with an unknown status " + status.toString());
  }

  // Frees the request's slot (its id goes back to freeIds only on a working device).
  private release(r: BlockOp): void {
    unchecked((this.slots[r.id] = null));
    r.id = -1;
    this.inFlight--;
  }

  // Ends the request's grants not ended yet; false while the backend still maps one (that one stays granted).
  private endGrants(r: BlockOp): bool {
    let ok = true;
    const n = r.pages.length;
    let data = false;
    for (let i = 0; i < r.grants.length; i++) {
      const g = r.grants[i];
      if (g < 0) continue;
      if (abi.gnttab_end_access(g) == 0) r.grants[i] = -1;
      else {
        ok = false;
        if (i < n) data = true;
      }
    }
    r.shared = data;
    return ok;
  }

  /** A request's deadline passed: the backend lost it, so the device fails (see the header). */
  expire(r: BlockOp): void {
    if (r.timer) r.timer = null;
    if (this.broken.length > 0) return;
    this.complete(); // an answer already on the ring counts, whatever the clock says
    if (this.broken.length > 0 || r.id < 0 || unchecked(this.slots[r.id]) !== r) return;
    this.fatal(r.what + ": no response from the backend in " + duration(this.requestTimeoutNs));
  }

  /**
   * Stops the device: every queued and in-flight request fails with the reason.
   * In-flight requests whose pages the backend still maps settle only when it
   * unmaps them, or after unmapWaitNs with `shared` set (Reclaim).
   */
  fatal(why: string): void {
    if (this.broken.length > 0) return;
    this.broken = why;
    const q = this.queue;
    this.queue = new Array<BlockOp>();
    const msg = this.name + ": " + why;
    for (let i = 0; i < q.length; i++) q[i].reject(msg);
    for (let i = 0; i < this.slots.length; i++) {
      const r = unchecked(this.slots[i]);
      if (r) stopTimer(r);
    }
    if (!this.reclaim(false)) spawn(new Reclaim(this));
  }

  /**
   * Settles the failed device's in-flight requests whose grants can be ended; with
   * giveUp, the others too, leaving their pages granted. True when none is left.
   */
  reclaim(giveUp: bool): bool {
    const msg = this.name + ": " + this.broken;
    let left = false;
    for (let i = 0; i < this.slots.length; i++) {
      const r = unchecked(this.slots[i]);
      if (!r) continue;
      if (!this.endGrants(r)) {
        if (!giveUp) {
          left = true;
          continue;
        }
        if (r.shared) this.sharedPages += r.pages.length;
        // An indirect page the backend still maps is given up with its slot.
        if (r.indirect && r.grants[r.pages.length] >= 0) unchecked((this.indirectPages[i] = 0));
      }
      this.release(r);
      r.reject(msg);
    }
    this.checkIdle();
    return !left;
  }

  private checkIdle(): void {
    if (this.idleWaits.length == 0 || this.inFlight > 0 || this.queue.length > 0) return;
    const ws = this.idleWaits;
    this.idleWaits = new Array<Future>();
    for (let i = 0; i < ws.length; i++) ws[i].resolve();
  }

  /** Returns the indirect pages to the I/O region (after disconnect). */
  releasePages(): void {
    for (let i = 0; i < this.indirectPages.length; i++) {
      const p = unchecked(this.indirectPages[i]);
      if (p != 0) iopage.release(p);
      unchecked((this.indirectPages[i] = 0));
    }
  }
}

function stopTimer(r: BlockOp): void {
  const t = r.timer;
  r.timer = null;
  if (t) t.cancel();
}
