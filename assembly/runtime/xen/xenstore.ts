// The xenstore client: requests over the xenstore ring (xs-wire.ts), replies
// matched by request id, watches by token, transactions retried on EAGAIN.
// xenstored is another domain: every reply is checked before use. An oversized
// reply is drained so the stream stays in step, a reply to no request is
// dropped, and a malformed one fails its request; none of them traps.
//
// Deadlines. Each request has one (requestTimeoutNs, REQUEST_TIMEOUT_NS = 10 s
// by default; per client, or per request through request()): a request
// xenstored has not answered by then rejects with "xenstore read <path>: no
// reply from xenstored in 10 s". A request still waiting for room on the ring
// is simply withdrawn; one already sent keeps its id reserved (abandoned) until
// its late reply comes and is dropped, so that reply can never be taken for a
// newer request's. After MAX_ABANDONED such requests the connection is given
// up (every request then fails at once, naming why).
//
// Watch events coalesce: a watch holds at most one pending event per path and
// at most MAX_PENDING_EVENTS paths; past that they collapse into one event for
// the watched path itself ("something below changed: read again"). Memory stays
// bounded however many events xenstored sends to a watch nobody reads.
import * as abi from "../abi";
import * as boot from "../boot";
import * as iopage from "../iopage";
import { Future, Sleep, State, Task, sleep, spawn } from "../sched";
import { ByteQueue, ByteRing } from "./byte-ring";
import { Channel, EventHandler, bound } from "./evtchn";
import * as w from "./xs-wire";

/** How long a request waits for its reply by default (Xenstore.requestTimeoutNs). */
export const REQUEST_TIMEOUT_NS: i64 = 10_000_000_000;
/** Requests sent and timed out, whose replies never came, before the connection is given up. */
export const MAX_ABANDONED: i32 = 64;
/** Distinct paths a watch keeps pending before they collapse into one event for the watched path. */
export const MAX_PENDING_EVENTS: i32 = 16;
/** Linux's ETIMEDOUT: the errno of a request xenstored did not answer in time. */
export const ETIMEDOUT: i32 = 110;

/** The reply to one request: resolved with the payload, or rejected ("xenstore read name: ENOENT"). */
export class XsReply extends Future {
  payload: Uint8Array = new Uint8Array(0);
  /** errno from XS_ERROR, or EIO for a malformed reply, ETIMEDOUT when xenstored did not answer. */
  errno: i32 = 0;
  /** The deadline while waiting for the reply. */
  timer: Sleep | null = null;
  timeoutNs: i64 = 0;
  constructor(
    public xs: Xenstore,
    public type: u32,
    public reqId: u32,
    public what: string,
  ) {
    super();
  }

  /** The payload as text, without the NUL some replies end with. */
  text(): string {
    let n = this.payload.length;
    if (n > 0 && this.payload[n - 1] == 0) n--;
    return String.UTF8.decodeUnsafe(this.payload.dataStart, n);
  }

  /** The payload as a list of NUL-terminated strings (XS_DIRECTORY, XS_GET_PERMS). */
  list(): string[] {
    const l = w.splitStrings(this.payload);
    return l ? l : new Array<string>();
  }

  // The deadline's timer wakes the reply itself.
  wake(from: Future): void {
    if (from === this.timer && from.ok) {
      this.timer = null;
      this.xs.expire(this);
    }
  }

  protected settle(state: State, error: string): void {
    const t = this.timer;
    this.timer = null;
    if (t) t.cancel();
    super.settle(state, error);
  }

  protected onCancel(): void {
    this.xs.forget(this.reqId); // a late reply is then dropped, never matched to another request
  }
}

/** Whether path is dir or below it. */
function under(path: string, dir: string): bool {
  if (!path.startsWith(dir)) return false;
  return path.length == dir.length || dir.endsWith("/") || path.charCodeAt(dir.length) == 47;
}

/** A registered watch: events wait, coalesced per path, until next() takes them. */
export class Watch {
  /** Paths with an event not yet taken, oldest first, each at most once. */
  queue: Array<string> = new Array<string>();
  waiter: WatchEvent | null = null;
  registered: XsReply | null = null;
  /** Events received; those merged into one already pending (pending + coalesced = received while nobody waited); collapses of a full queue. */
  events: u64 = 0;
  coalesced: u64 = 0;
  overflows: u64 = 0;
  constructor(
    public path: string,
    public token: string,
  ) {}

  /** Resolves with the path of the next event (at once if one is pending). */
  next(): WatchEvent {
    const e = new WatchEvent(this);
    if (this.queue.length > 0) {
      e.path = this.queue.shift();
      e.resolve();
    } else this.waiter = e;
    return e;
  }

  deliver(path: string): void {
    this.events++;
    const e = this.waiter;
    if (e && e.pending) {
      this.waiter = null;
      e.path = path;
      e.resolve();
      return;
    }
    // An event means "read again": one pending per path says as much as many.
    if (this.queue.includes(path)) {
      this.coalesced++;
      return;
    }
    if (this.queue.length >= MAX_PENDING_EVENTS) {
      // Too many paths: one event for the watched path stands for them all.
      this.overflows++;
      this.coalesced += <u64>this.queue.length - 1;
      this.queue = [this.path];
      if (path == this.path) {
        this.coalesced++;
        return;
      }
    }
    this.queue.push(path);
  }
}

export class WatchEvent extends Future {
  path: string = "";
  constructor(public watch: Watch) {
    super();
  }
  protected onCancel(): void {
    if (this.watch.waiter === this) this.watch.waiter = null;
  }
}

/** A transaction's body: a task whose requests pass `this.tx`; it runs again from scratch on EAGAIN. */
export abstract class TxBody extends Task {
  tx: u32 = 0;
  /** Clears the body's state before each attempt. */
  abstract restart(): void;
}

const MAX_TX_ATTEMPTS: i32 = 16;

class TxRunner extends Task {
  stage: i32 = 0;
  attempts: i32 = 0;
  req: XsReply | null = null;
  constructor(
    public xs: Xenstore,
    public body: TxBody,
  ) {
    super();
  }

  step(): void {
    if (this.stage == 0) {
      this.attempts++;
      this.stage = 1;
      this.await((this.req = this.xs.transactionStart()));
    } else if (this.stage == 1) {
      const r = this.req!;
      if (!r.ok) return this.fail(r.error);
      this.body.reset();
      this.body.tx = <u32>r.value;
      this.body.restart();
      this.stage = 2;
      this.await(spawn(this.body));
    } else if (this.stage == 2) {
      this.stage = 3;
      this.await((this.req = this.xs.transactionEnd(this.body.tx, this.body.ok)));
    } else {
      const r = this.req!;
      if (this.body.failed) this.fail(this.body.error);
      else if (r.ok) this.finish(this.attempts);
      else if (r.errno == abi.EAGAIN && this.attempts < MAX_TX_ATTEMPTS) {
        this.stage = 0; // another writer got there first: run the body again
        this.yieldNow();
      } else if (r.errno == abi.EAGAIN) this.fail("xenstore transaction: still conflicting after " + this.attempts.toString() + " attempts");
      else this.fail(r.error);
    }
  }
}

export class Xenstore extends EventHandler {
  private req: ByteRing;
  private rsp: ByteRing;
  private pending: Map<u32, XsReply> = new Map<u32, XsReply>();
  /** Sent requests that timed out or were cancelled: their ids stay reserved until the late reply. */
  private abandoned: Set<u32> = new Set<u32>();
  private nextId: u32 = 1;
  /** Requests waiting for room on the ring, tagged with their ids. */
  private outq: ByteQueue;
  private watches: Map<string, Watch> = new Map<string, Watch>();
  // Reply parser state: header bytes, then payload bytes, or bytes to drain.
  private hdr: usize = memory.data(16);
  private hdrFill: i32 = 0;
  private payload: Uint8Array | null = null;
  private payFill: i32 = 0;
  private drain: u32 = 0;
  private scratch: usize = memory.data(256);
  /** Replies or events that were dropped as malformed, oversized or unexpected. */
  errors: i32 = 0;
  lastError: string = "";
  dead: bool = false;
  /** The default deadline of each request (REQUEST_TIMEOUT_NS). */
  requestTimeoutNs: i64 = REQUEST_TIMEOUT_NS;
  /** Requests that timed out, and late replies to them dropped. */
  timeouts: i32 = 0;
  lateReplies: i32 = 0;
  /** Watch events received, for every watch. */
  watchEvents: u64 = 0;

  constructor(
    public page: usize,
    public ch: Channel,
  ) {
    super();
    const req = new ByteRing(page + w.RING_REQ, w.RING_SIZE, page + w.RING_REQ_CONS, page + w.RING_REQ_PROD);
    this.req = req;
    this.rsp = new ByteRing(page + w.RING_RSP, w.RING_SIZE, page + w.RING_RSP_CONS, page + w.RING_RSP_PROD);
    this.outq = new ByteQueue(req);
    ch.handler = this;
  }

  // ---- requests ----

  read(path: string, tx: u32 = 0): XsReply {
    return this.request(w.XS_READ, tx, w.strings([path]), "read " + path);
  }
  write(path: string, value: string, tx: u32 = 0): XsReply {
    return this.request(w.XS_WRITE, tx, w.pathAndValue(path, value), "write " + path);
  }
  mkdir(path: string, tx: u32 = 0): XsReply {
    return this.request(w.XS_MKDIR, tx, w.strings([path]), "mkdir " + path);
  }
  rm(path: string, tx: u32 = 0): XsReply {
    return this.request(w.XS_RM, tx, w.strings([path]), "rm " + path);
  }
  directory(path: string, tx: u32 = 0): XsReply {
    return this.request(w.XS_DIRECTORY, tx, w.strings([path]), "directory " + path);
  }
  getPerms(path: string, tx: u32 = 0): XsReply {
    return this.request(w.XS_GET_PERMS, tx, w.strings([path]), "get-perms " + path);
  }
  /** perms as xenstored writes them: "n0", "r1", "b2" (first: owner and default). */
  setPerms(path: string, perms: string[], tx: u32 = 0): XsReply {
    const parts = new Array<string>();
    parts.push(path);
    for (let i = 0; i < perms.length; i++) parts.push(perms[i]);
    return this.request(w.XS_SET_PERMS, tx, w.strings(parts), "set-perms " + path);
  }
  transactionStart(): XsReply {
    return this.request(w.XS_TRANSACTION_START, 0, w.strings([""]), "transaction start");
  }
  transactionEnd(tx: u32, commit: bool): XsReply {
    return this.request(w.XS_TRANSACTION_END, tx, w.strings([commit ? "T" : "F"]), "transaction end");
  }

  /** Runs body in a transaction, again from scratch on EAGAIN; resolves with the attempts made. */
  transaction(body: TxBody): Future {
    return spawn(new TxRunner(this, body));
  }

  /** Registers a watch; xenstored sends one event at once, then one per change at or below path. */
  watch(path: string, token: string): Watch {
    const wt = new Watch(path, token);
    this.watches.set(token, wt);
    wt.registered = this.request(w.XS_WATCH, 0, w.strings([path, token]), "watch " + path);
    return wt;
  }

  unwatch(wt: Watch): XsReply {
    this.watches.delete(wt.token);
    return this.request(w.XS_UNWATCH, 0, w.strings([wt.path, wt.token]), "unwatch " + wt.path);
  }

  /** Sends a request; the reply settles the returned future, or its deadline (timeoutNs, default requestTimeoutNs) rejects it. */
  request(type: u32, tx: u32, payload: Uint8Array, what: string, timeoutNs: i64 = 0): XsReply {
    let id = this.nextId;
    // Ids are unique among requests in flight and those whose late reply may still come.
    while (id == 0 || this.pending.has(id) || this.abandoned.has(id)) id++;
    this.nextId = id + 1;
    const r = new XsReply(this, type, id, what);
    if (this.dead) {
      r.reject("xenstore " + what + ": " + this.lastError);
      return r;
    }
    if (<u32>payload.length > w.PAYLOAD_MAX) {
      r.errno = abi.E2BIG;
      r.reject("xenstore " + what + ": request of " + payload.length.toString() + " bytes exceeds XENSTORE_PAYLOAD_MAX (4096)");
      return r;
    }
    this.pending.set(id, r);
    this.outq.push(w.encode(type, id, tx, payload), id);
    r.timeoutNs = timeoutNs > 0 ? timeoutNs : this.requestTimeoutNs;
    const t = sleep(r.timeoutNs);
    r.timer = t;
    t.addWaiter(r);
    this.flush();
    return r;
  }

  /** A request's deadline passed: it fails, unless its reply is already on the ring. */
  expire(r: XsReply): void {
    if (!r.pending) return;
    this.receive(); // a reply already there counts, whatever the clock says
    if (!r.pending || !this.pending.has(r.reqId)) return;
    this.timeouts++;
    r.errno = ETIMEDOUT;
    const msg = "xenstore " + r.what + ": no reply from xenstored in " + seconds(r.timeoutNs);
    this.forget(r.reqId);
    r.reject(this.dead ? msg + " (" + this.lastError + ")" : msg);
  }

  /** Drops a request that will not be waited for; a reply that still comes is recognised and dropped. */
  forget(reqId: u32): void {
    if (!this.pending.has(reqId)) return;
    this.pending.delete(reqId);
    // Not sent yet (or not begun): withdraw it, and its id is free again.
    if (this.outq.withdraw(this.outq.indexOf(reqId))) return;
    if (this.dead) return;
    this.abandoned.add(reqId);
    if (this.abandoned.size > MAX_ABANDONED)
      this.die("xenstored left " + this.abandoned.size.toString() + " requests unanswered; the connection is given up");
  }

  /** Requests still waiting for a reply. */
  inFlight(): i32 {
    return this.pending.size;
  }

  // ---- the ring ----

  onEvent(ch: Channel): void {
    this.receive();
    this.flush();
  }

  // Copies queued requests onto the ring; what does not fit waits for xenstored's event.
  private flush(): void {
    if (this.dead) return;
    const before = this.outq.placed;
    if (!this.outq.flush()) return this.die("xenstored corrupted the request ring indices");
    if (this.outq.placed != before) this.ch.notify();
  }

  private receive(): void {
    let took = false;
    while (!this.dead) {
      let n: i32;
      if (this.drain > 0) {
        n = this.rsp.read(this.scratch, <i32>min<u32>(this.drain, 256));
        if (n > 0) this.drain -= <u32>n;
      } else if (this.hdrFill < w.HEADER_SIZE) {
        n = this.rsp.read(this.hdr + this.hdrFill, w.HEADER_SIZE - this.hdrFill);
        if (n > 0) {
          this.hdrFill += n;
          if (this.hdrFill == w.HEADER_SIZE) this.headerDone();
        }
      } else {
        const p = this.payload!;
        n = this.rsp.read(p.dataStart + this.payFill, p.length - this.payFill);
        if (n > 0) {
          this.payFill += n;
          if (this.payFill == p.length) this.messageDone();
        }
      }
      if (n < 0) return this.die("xenstored corrupted the response ring indices");
      if (n == 0) break;
      took = true;
    }
    if (took) this.ch.notify(); // there is room again: xenstored may write more
  }

  private headerDone(): void {
    const len = load<u32>(this.hdr + 12);
    if (len > w.PAYLOAD_MAX) {
      // Never trust it: skip the payload so the next header is read where it starts.
      const id = load<u32>(this.hdr + 4);
      const msg = "reply of " + len.toString() + " bytes exceeds XENSTORE_PAYLOAD_MAX (4096); drained";
      this.failRequest(id, abi.E2BIG, msg);
      this.drain = len;
      this.hdrFill = 0;
      return;
    }
    this.payload = new Uint8Array(len);
    this.payFill = 0;
    if (len == 0) this.messageDone();
  }

  private messageDone(): void {
    const type = load<u32>(this.hdr);
    const id = load<u32>(this.hdr + 4);
    const payload = this.payload!;
    this.hdrFill = 0;
    this.payload = null;
    if (type == w.XS_WATCH_EVENT) return this.watchEvent(payload);
    if (!this.pending.has(id) && this.abandoned.has(id)) {
      // The reply to a request that timed out: dropped, so the stream stays in step.
      this.abandoned.delete(id);
      this.lateReplies++;
      return;
    }
    if (!this.pending.has(id)) {
      this.note("reply with unknown req_id " + id.toString() + " (type " + type.toString() + "); dropped");
      return;
    }
    const r = this.pending.get(id);
    this.pending.delete(id);
    if (type == w.XS_ERROR) {
      const l = w.splitStrings(payload);
      const errno = l && l.length == 1 ? w.errnoOf(l[0]) : 0;
      if (errno == 0) return this.malformed(r, "an XS_ERROR reply without a known error name");
      r.errno = errno;
      r.reject("xenstore " + r.what + ": " + l![0]);
      return;
    }
    if (type != r.type) return this.malformed(r, "a reply of type " + type.toString() + " to a request of type " + r.type.toString());
    const bad = checkShape(type, payload);
    if (bad.length > 0) return this.malformed(r, bad);
    r.payload = payload;
    // The value: the transaction id for XS_TRANSACTION_START, else the payload length.
    r.resolve(type == w.XS_TRANSACTION_START ? <i64>U32.parseInt(r.text()) : payload.length);
  }

  private watchEvent(payload: Uint8Array): void {
    const l = w.splitStrings(payload);
    if (!l || l.length < 2) return this.note("malformed XS_WATCH_EVENT (needs path and token); dropped");
    const token = l[1];
    if (!this.watches.has(token)) return this.note("watch event for unknown token " + token + "; dropped");
    const wt = this.watches.get(token);
    // xenstored fires a watch only for its path or below it.
    if (!under(l[0], wt.path)) return this.note("watch event for " + l[0] + ", outside the watched " + wt.path + "; dropped");
    this.watchEvents++;
    wt.deliver(l[0]);
  }

  private failRequest(id: u32, errno: i32, msg: string): void {
    this.note(msg);
    if (this.abandoned.has(id)) this.abandoned.delete(id);
    if (!this.pending.has(id)) return;
    const r = this.pending.get(id);
    this.pending.delete(id);
    r.errno = errno;
    r.reject("xenstore " + r.what + ": " + msg);
  }

  private malformed(r: XsReply, what: string): void {
    this.note("malformed reply to " + r.what + ": " + what);
    r.errno = abi.EIO;
    r.reject("xenstore " + r.what + ": malformed reply (" + what + ")");
  }

  private note(msg: string): void {
    this.errors++;
    this.lastError = msg;
  }

  private die(msg: string): void {
    this.dead = true;
    this.note(msg);
    const ids = this.pending.keys();
    const rs = new Array<XsReply>();
    for (let i = 0; i < ids.length; i++) rs.push(this.pending.get(ids[i]));
    this.pending.clear();
    this.abandoned.clear();
    this.outq.clear();
    for (let i = 0; i < rs.length; i++) rs[i].reject("xenstore " + rs[i].what + ": " + msg);
  }
}

/** "10 s", "250 ms": a duration for error messages. */
export function seconds(ns: i64): string {
  if (ns % 1_000_000_000 == 0) return (ns / 1_000_000_000).toString() + " s";
  if (ns % 1_000_000 == 0) return (ns / 1_000_000).toString() + " ms";
  return (ns / 1_000).toString() + " µs";
}

/** The payload shape a reply of `type` must have; "" when it does. */
function checkShape(type: u32, p: Uint8Array): string {
  const l = w.splitStrings(p);
  if (type == w.XS_READ) return "";
  if (type == w.XS_DIRECTORY || type == w.XS_GET_PERMS) return l ? "" : "a list that does not end with NUL";
  if (type == w.XS_TRANSACTION_START) {
    if (!l || l.length != 1 || l[0].length == 0 || l[0].length > 10) return "a transaction id that is not a number";
    for (let i = 0; i < l[0].length; i++) {
      const c = l[0].charCodeAt(i);
      if (c < 48 || c > 57) return "a transaction id that is not a number";
    }
    return "";
  }
  // Acknowledgements (write, mkdir, rm, set-perms, watch, unwatch, transaction end) are "OK\0".
  return l && l.length == 1 && l[0] == "OK" ? "" : "an acknowledgement that is not OK";
}

let client: Xenstore | null = null;

/** The domain's xenstore connection, set up on first use (ring page, store_ring_map, event channel). */
export function open(): Xenstore {
  let c = client;
  if (c) return c;
  const page = iopage.alloc();
  if (page == 0) throw new Error("xenstore: no memory for the ring page");
  const rc = abi.store_ring_map(page);
  if (rc < 0) throw new Error("xenstore: store_ring_map failed with errno " + (-rc).toString() + " (see shim/ABI.md §7)");
  c = new Xenstore(page, bound(<i32>boot.info().storeEvtchn));
  client = c;
  return c;
}
