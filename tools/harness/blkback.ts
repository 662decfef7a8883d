// A virtual block device backend (xen-blkback's role) for the harness: the
// xenbus handshake of xen/include/public/io/blkif.h, the request ring read
// through the emulated grant table, and a disk held in memory (optionally
// loaded from and written back to a file). It is strict — malformed segments,
// out-of-range sectors, writes to a read-only disk, unknown or read-only
// grants for reads are answered BLKIF_RSP_ERROR and logged in `errors` — and
// it injects faults: I/O errors on chosen sectors, delayed and out-of-order
// completions, refused operations, mangled, swallowed and late responses, and power loss (every
// write not covered by a completed flush or a later barrier's pre-flush is dropped, optionally
// one multi-sector write torn).
//
// Flush and barrier are modelled on Linux's drivers/block/xen-blkback/blkback.c
// (dispatch_rw_block_io): BLKIF_OP_FLUSH_DISKCACHE is an empty REQ_PREFLUSH bio, which
// makes durable the writes that had completed when it was issued; BLKIF_OP_WRITE_BARRIER
// first drains the requests in flight (xen_blk_drain_io), then issues its write with
// REQ_PREFLUSH: the writes before it become durable, but the barrier's own data is only
// in the disk's cache, durable after a later flush (or barrier) completes. A power cut
// may drop it. With delayMs, a request is really in flight until it completes: a write's
// data leaves its pages at dispatch or at completion and lands on the disk at completion,
// a read's lands in its pages at completion, so requests in flight together land in
// completion order.
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import type { Domain } from "./domain.ts";
import { BackendEnd } from "./event-channels.ts";
import { GrantMapping } from "./grant-table.ts";
import { toolstackDevice, XenbusFaults, XenbusState } from "./xenbus.ts";

/** BLKIF_OP_* and BLKIF_RSP_* (blkif.h). */
export const BLKIF_OP = { read: 0, write: 1, writeBarrier: 2, flushDiskcache: 3, discard: 5, indirect: 6 } as const;
export const BLKIF_RSP = { okay: 0, error: -1, eopnotsupp: -2 } as const;
/** VDISK_READONLY (blkif.h). */
export const VDISK_READONLY = 4;
/** struct blkif_request / blkif_response sizes on x86_64, and the shared ring header (io/ring.h). */
const REQ_SIZE = 112;
const RING_HEADER = 64;
const MAX_SEGMENTS = 11;
const MAX_INDIRECT_PAGES = 8;
const SEGS_PER_INDIRECT_PAGE = 512;
const PAGE = 4096;
/** The first vbd's device number: xvda (major 202, minor 0). */
export const XVDA = 51712;

const OP_NAME: Record<number, string> = { 0: "read", 1: "write", 2: "barrier", 3: "flush", 5: "discard", 6: "indirect" };

export interface DiskFaults {
  /**
   * 512-byte sectors whose reads or writes fail with BLKIF_RSP_ERROR (nothing moves); with
   * `times`, only the first that many requests touching them fail (a transient error).
   */
  ioErrors?: { sector: number; count?: number; op?: "read" | "write"; times?: number }[];
  /**
   * Each request completes this many ms after dispatch (a timed event: the guest blocks
   * meanwhile); its data lands at completion (see the header), its pages stay mapped until then.
   */
  delayMs?: number;
  /** Execute each batch in a shuffled order (seed), and with delayMs complete at jittered times; barriers still drain. */
  reorder?: number;
  /** With delayMs and reorder: this share (0 … 1) of the writes takes `ms` instead (stuck behind a slow region of the disk). */
  stragglers?: { share: number; ms: number };
  /** Cut the power when this many write, flush or barrier requests have executed. */
  powerCutAfter?: number;
  /** At a power cut, the last unflushed multi-sector write is half applied. */
  tornWrite?: boolean;
  /**
   * At a power cut, each unflushed write reached the medium with probability 1/2, in
   * any order (a volatile write cache that had written some back); the seed picks which.
   */
  cacheSurvivors?: number;
  /** Operations answered BLKIF_RSP_EOPNOTSUPP although the feature is offered. */
  refuseOps?: number[];
  /** Unmap the ring this many ms after the frontend's Closed (a slow dom0, as seen under Xen). */
  unmapDelayMs?: number;
  /** Rewrites responses as they go on the ring (hostile-backend tests); n counts from 0. */
  mangle?: (rsp: { id: bigint; op: number; status: number }, n: number) => void;
  /**
   * Requests (numbered from 0 in execution order) never answered: an I/O lost in the
   * backend, which keeps their pages mapped for good (a stuck bio) unless swallowUnmapped.
   */
  swallow?: number[];
  /** The swallowed requests' pages are unmapped: only the answer is lost. */
  swallowUnmapped?: boolean;
  /**
   * Requests (numbered as for swallow) answered lateMs after they executed, keeping their
   * pages mapped until then; a read's data lands in its pages only then (a late DMA).
   */
  late?: number[];
  lateMs?: number;
}

export interface DiskOptions {
  /** The backing file (read at creation, written back at each flush). */
  file?: string;
  /** The disk's initial contents. */
  bytes?: Uint8Array;
  /** Size in 512-byte sectors when neither file nor bytes is given. */
  sectors?: number;
  readOnly?: boolean;
  /** Logical sector size: 512 (default) or 4096. */
  sectorSize?: number;
  /** feature-flush-cache and feature-barrier (default: both offered). */
  flush?: boolean;
  barrier?: boolean;
  /** feature-max-indirect-segments (default 256; 0 = not offered). */
  maxIndirectSegments?: number;
  /** max-ring-page-order offered (default 0: one page, key not written). */
  maxRingPageOrder?: number;
  /** Backend keys written at connect instead of the real ones (hostile-value tests); undefined removes. */
  keys?: Record<string, string | undefined>;
  faults?: DiskFaults;
  /** The backend's xenbus side misbehaving (xenbus.ts). */
  xenbus?: XenbusFaults;
}

/** The storage: what reads see, what survives a power cut, and the writes in between. */
export class Disk {
  readonly sectorSize: number;
  readonly readOnly: boolean;
  /** What survives power loss. */
  durable: Uint8Array;
  /** What reads see: durable plus the writes not yet flushed. */
  current: Uint8Array;
  /** Writes not yet covered by a flush or pre-flush, in execution order (seq numbers them). */
  pending: { off: number; data: Uint8Array; seq: number }[] = [];
  /** Writes executed so far: the seq of the next one. */
  writeSeq = 0;
  flushes = 0;
  powerLosses = 0;

  constructor(readonly opts: DiskOptions = {}) {
    this.sectorSize = opts.sectorSize ?? 512;
    if (this.sectorSize !== 512 && this.sectorSize !== 4096)
      throw new Error(`disk: sector size ${this.sectorSize} is neither 512 nor 4096`);
    this.readOnly = opts.readOnly ?? false;
    const init = opts.file ? readFileSync(opts.file) : (opts.bytes ?? new Uint8Array((opts.sectors ?? 2048) * 512));
    if (init.length % this.sectorSize !== 0)
      throw new Error(`disk: ${init.length} bytes is not a whole number of ${this.sectorSize}-byte sectors`);
    this.durable = new Uint8Array(init);
    this.current = this.durable.slice();
  }

  /** Capacity in 512-byte sectors. */
  get sectors512(): number {
    return this.current.length / 512;
  }

  read(off: number, len: number): Uint8Array {
    return this.current.slice(off, off + len);
  }

  write(off: number, data: Uint8Array): void {
    this.current.set(data, off);
    this.pending.push({ off, data: data.slice(), seq: this.writeSeq++ });
  }

  /**
   * A cache flush: makes durable every executed write, or (upTo) those executed before
   * write number upTo — the ones that had completed when the flush was issued.
   */
  commit(upTo = Infinity): void {
    this.flushes++;
    const done = this.pending.filter((w) => w.seq < upTo);
    if (!done.length) return;
    for (const w of done) this.durable.set(w.data, w.off);
    if (this.opts.file) {
      const fd = openSync(this.opts.file, "r+");
      try {
        for (const w of done) writeSync(fd, w.data, 0, w.data.length, w.off);
      } finally {
        closeSync(fd);
      }
    }
    this.pending = this.pending.filter((w) => w.seq >= upTo);
  }

  /**
   * Power loss: unflushed writes are gone, except the ones `survives` picks (written
   * back by the cache before the cut); with `torn`, the last multi-sector one lands half-way.
   */
  powerLoss(torn = false, survives?: () => boolean): void {
    this.powerLosses++;
    if (survives) {
      const kept = this.pending.filter(() => survives());
      for (const w of kept) this.durable.set(w.data, w.off);
      if (this.opts.file && kept.length) {
        const fd = openSync(this.opts.file, "r+");
        for (const w of kept) writeSync(fd, w.data, 0, w.data.length, w.off);
        closeSync(fd);
      }
      this.pending = this.pending.filter((w) => !kept.includes(w));
    }
    if (torn) {
      const w = [...this.pending].reverse().find((p) => p.data.length > 512);
      if (w) {
        const half = Math.floor(w.data.length / 1024) * 512;
        this.durable.set(w.data.subarray(0, half), w.off);
        if (this.opts.file) {
          const fd = openSync(this.opts.file, "r+");
          writeSync(fd, w.data, 0, half, w.off);
          closeSync(fd);
        }
      }
    }
    this.pending = [];
    this.current = this.durable.slice();
  }
}

/** Thrown through the guest when an injected power cut happens: the run ends there. */
export class PowerCutSignal {
  constructor(readonly message: string) {}
}

interface Req {
  op: number;
  /** READ/WRITE for an indirect request. */
  rwOp: number;
  indirect: boolean;
  id: bigint;
  sector: bigint;
  handle: number;
  segs: { gref: number; first: number; last: number }[];
  /** A flush or barrier: its (pre-)flush covers the writes numbered below this (set at dispatch). */
  flushUpTo?: number;
  /** A slow write's data, taken from its pages when dispatched (it lands at completion). */
  captured?: Uint8Array;
}

/** One vbd of the domain: device/vbd/<devid> ↔ backend/vbd/<domid>/<devid>. */
export class VbdBackend {
  readonly frontend: string;
  readonly backend: string;
  readonly disk: Disk;
  /** Protocol violations by the frontend, in order (each answered BLKIF_RSP_ERROR). */
  readonly errors: string[] = [];
  /** Requests executed, in execution order (ordering tests). */
  readonly log: { op: string; sector: number; nsec: number; id: bigint; status: number }[] = [];
  requests = 0;
  /** Most requests consumed but not yet answered at once. */
  maxOutstanding = 0;
  notifies = 0;
  ringPageOrder = 0;
  private outstanding = 0;
  private responses = 0;
  private maps: GrantMapping[] = [];
  private port?: BackendEnd;
  private nrEnts = 0;
  private reqCons = 0;
  private rspProdPvt = 0;
  private broken = false;
  private rng: () => number;
  private writesExecuted = 0;
  /** How often each faults.ioErrors entry has failed a request (for `times`). */
  private readonly ioErrorHits = new Map<object, number>();
  private readonly faults: DiskFaults;

  constructor(
    private readonly dom: Domain,
    readonly devid: number,
    disk: Disk | DiskOptions,
  ) {
    this.disk = disk instanceof Disk ? disk : new Disk(disk);
    this.faults = this.disk.opts.faults ?? {};
    this.rng = mulberry32(this.faults.reorder ?? 1);
    const d = dom.domid;
    this.frontend = `/local/domain/${d}/device/vbd/${devid}`;
    this.backend = `/local/domain/0/backend/vbd/${d}/${devid}`;
    const xs = dom.xenstored;
    const o = this.disk.opts;
    // What the toolstack writes before the guest starts (libxl's vbd device).
    toolstackDevice(xs, d, this.frontend, this.backend);
    xs.write(`${this.frontend}/virtual-device`, String(devid));
    xs.write(`${this.frontend}/device-type`, "disk");
    xs.write(`${this.backend}/mode`, this.disk.readOnly ? "r" : "w");
    xs.write(`${this.backend}/params`, o.file ?? "(memory)");
    // Offers made before InitWait, as xen-blkback does at probe.
    const ind = o.maxIndirectSegments ?? 256;
    if (ind > 0) xs.write(`${this.backend}/feature-max-indirect-segments`, String(ind));
    if ((o.maxRingPageOrder ?? 0) > 0) xs.write(`${this.backend}/max-ring-page-order`, String(o.maxRingPageOrder));
    this.xb = o.xenbus ?? {};
    xs.write(`${this.backend}/state`, String(this.xb.stayInitialising ? XenbusState.Initialising : XenbusState.InitWait));
    xs.watch(`${this.frontend}/state`, () => this.frontendChanged());
  }

  // ---- the xenbus side's faults ----

  private readonly xb: XenbusFaults;

  // Leaves Connected instead of answering request n (XenbusFaults.leaveAt): the request is lost.
  private leaves(n: number): boolean {
    if (this.xb.leaveAt !== n) return false;
    const xs = this.dom.xenstored;
    const v = this.xb.leaveWith === undefined ? String(XenbusState.Closing) : this.xb.leaveWith;
    if (v === null) xs.rm(`${this.backend}/state`);
    else xs.write(`${this.backend}/state`, v);
    return true;
  }

  state(): number {
    return Number(this.dom.xenstored.read(`${this.backend}/state`));
  }

  get connected(): boolean {
    return this.maps.length > 0;
  }

  private frontendChanged(): void {
    const fe = Number(this.dom.xenstored.read(`${this.frontend}/state`));
    if (this.xb.neverConnect && fe === XenbusState.Initialised) return;
    if (this.xb.neverClose && (fe === XenbusState.Closing || fe === XenbusState.Closed)) return;
    // As xen-blkback: Closing is acknowledged, the ring is unmapped only at the frontend's Closed.
    if (fe === XenbusState.Initialised && this.state() === XenbusState.InitWait) this.connect();
    else if (fe === XenbusState.Closing && this.state() !== XenbusState.Closed)
      this.dom.xenstored.write(`${this.backend}/state`, String(XenbusState.Closing));
    else if (fe === XenbusState.Closed) {
      const late = this.faults.unmapDelayMs ?? 0;
      if (late > 0) this.dom.schedule(this.dom.monotonicNs() + BigInt(late * 1e6), () => this.disconnect());
      else this.disconnect();
    }
  }

  private refuse(why: string): void {
    this.errors.push(why);
    this.dom.xenstored.write(`${this.backend}/state`, String(XenbusState.Closed));
  }

  private connect(): void {
    const xs = this.dom.xenstored;
    const key = (k: string) => xs.read(`${this.frontend}/${k}`);
    const o = this.disk.opts;
    const proto = key("protocol");
    if (proto !== undefined && proto !== "x86_64-abi") return this.refuse(`protocol "${proto}" is not x86_64-abi`);
    const orderKey = key("ring-page-order");
    const order = orderKey === undefined ? 0 : Number(orderKey);
    if (!Number.isInteger(order) || order < 0 || order > (o.maxRingPageOrder ?? 0))
      return this.refuse(`ring-page-order "${orderKey}" exceeds max-ring-page-order ${o.maxRingPageOrder ?? 0}`);
    const refs: number[] = [];
    if (orderKey === undefined) refs.push(Number(key("ring-ref")));
    else for (let i = 0; i < 1 << order; i++) refs.push(Number(key(`ring-ref${i}`)));
    const port = Number(key("event-channel"));
    try {
      for (const r of refs) {
        if (!Number.isInteger(r)) throw new Error(`ring-ref is not a number`);
        this.maps.push(this.dom.gnttab.backendMap(r, false));
      }
      this.port = this.dom.evtchn.backendBind(port, () => this.service());
    } catch (e: any) {
      for (const m of this.maps) m.unmap();
      this.maps = [];
      return this.refuse(e.message);
    }
    this.ringPageOrder = order;
    this.nrEnts = 1 << Math.floor(Math.log2((PAGE * refs.length - RING_HEADER) / REQ_SIZE));
    // BACK_RING_ATTACH: start from the indices the frontend initialised.
    this.reqCons = this.rspProdPvt = this.u32(8);
    const keys: Record<string, string | undefined> = {
      sectors: String(this.disk.current.length / this.disk.sectorSize),
      info: String(this.disk.readOnly ? VDISK_READONLY : 0),
      "sector-size": String(this.disk.sectorSize),
      "physical-sector-size": String(this.disk.sectorSize),
      "feature-flush-cache": (o.flush ?? true) ? "1" : "0",
      "feature-barrier": (o.barrier ?? true) ? "1" : "0",
      ...o.keys,
    };
    for (const [k, v] of Object.entries(keys)) {
      if (v === undefined) xs.rm(`${this.backend}/${k}`);
      else xs.write(`${this.backend}/${k}`, v);
    }
    xs.write(`${this.backend}/state`, this.xb.connectedState ?? String(XenbusState.Connected));
  }

  private disconnect(): void {
    if (this.maps.length) {
      this.service();
      for (const m of this.maps) m.unmap();
      this.maps = [];
    }
    this.port = undefined;
    this.dom.xenstored.write(`${this.backend}/state`, String(XenbusState.Closed));
  }

  // ---- the shared ring (io/ring.h), possibly spanning several pages ----

  private ringRead(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len;) {
      const p = Math.floor((off + i) / PAGE);
      const o = (off + i) % PAGE;
      const n = Math.min(len - i, PAGE - o);
      out.set(this.maps[p].read(o, n), i);
      i += n;
    }
    return out;
  }

  private ringWrite(off: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length;) {
      const p = Math.floor((off + i) / PAGE);
      const o = (off + i) % PAGE;
      const n = Math.min(bytes.length - i, PAGE - o);
      this.maps[p].write(o, bytes.subarray(i, i + n));
      i += n;
    }
  }

  private u32(off: number): number {
    const b = this.ringRead(off, 4);
    return new DataView(b.buffer).getUint32(0, true);
  }

  private setU32(off: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.ringWrite(off, b);
  }

  private slot(idx: number): number {
    return RING_HEADER + (idx & (this.nrEnts - 1)) * REQ_SIZE;
  }

  /** Takes every request on the ring and executes it (RING_FINAL_CHECK_FOR_REQUESTS loop). */
  service(): void {
    if (!this.maps.length || this.broken) return;
    for (;;) {
      const batch: Req[] = [];
      const prod = this.u32(0);
      if ((prod - this.reqCons) >>> 0 > this.nrEnts) {
        this.errors.push(`req_prod ${prod} is more than ${this.nrEnts} past req_cons ${this.reqCons}: the ring is corrupt`);
        this.broken = true;
        return;
      }
      while (this.reqCons !== prod) {
        batch.push(this.parse(this.ringRead(this.slot(this.reqCons), REQ_SIZE)));
        this.reqCons = (this.reqCons + 1) >>> 0;
      }
      this.requests += batch.length;
      this.outstanding += batch.length;
      this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
      this.executeBatch(batch);
      // Ask to be notified at the next request, then look again (no lost wakeup).
      this.setU32(4, this.reqCons + 1);
      if (this.u32(0) === this.reqCons) return;
    }
  }

  private parse(b: Uint8Array): Req {
    const dv = new DataView(b.buffer);
    const op = b[0];
    if (op === BLKIF_OP.indirect) {
      const nr = dv.getUint16(2, true);
      const grefs: number[] = [];
      for (let i = 0; i < MAX_INDIRECT_PAGES; i++) grefs.push(dv.getUint32(28 + 4 * i, true));
      const req: Req = {
        op,
        rwOp: b[1],
        indirect: true,
        id: dv.getBigUint64(8, true),
        sector: dv.getBigUint64(16, true),
        handle: dv.getUint16(24, true),
        segs: [],
      };
      // The segments live in the indirect pages; read them only when the count is sane.
      const max = this.disk.opts.maxIndirectSegments ?? 256;
      if (nr >= 1 && nr <= max && max > 0) {
        const pages = Math.ceil(nr / SEGS_PER_INDIRECT_PAGE);
        for (let p = 0; p < pages; p++) {
          let m: GrantMapping;
          try {
            m = this.dom.gnttab.backendMap(grefs[p], true);
          } catch (e: any) {
            (req as any).bad = `indirect page ${p}: ${e.message}`;
            return req;
          }
          const n = Math.min(SEGS_PER_INDIRECT_PAGE, nr - p * SEGS_PER_INDIRECT_PAGE);
          const page = m.read(0, n * 8);
          m.unmap();
          const pv = new DataView(page.buffer);
          for (let i = 0; i < n; i++) req.segs.push({ gref: pv.getUint32(i * 8, true), first: page[i * 8 + 4], last: page[i * 8 + 5] });
        }
      } else (req as any).bad = `indirect request with ${nr} segments (feature-max-indirect-segments is ${max})`;
      return req;
    }
    const nr = b[1];
    const req: Req = {
      op,
      rwOp: op,
      indirect: false,
      id: dv.getBigUint64(8, true),
      sector: dv.getBigUint64(16, true),
      handle: dv.getUint16(2, true),
      segs: [],
    };
    if (nr > MAX_SEGMENTS) (req as any).bad = `${nr} segments (BLKIF_MAX_SEGMENTS_PER_REQUEST is ${MAX_SEGMENTS})`;
    else for (let i = 0; i < nr; i++) req.segs.push({ gref: dv.getUint32(24 + 8 * i, true), first: b[28 + 8 * i], last: b[29 + 8 * i] });
    return req;
  }

  // Executes in ring order, or shuffled between barriers; answers now or after the delay.
  private executeBatch(batch: Req[]): void {
    const order: Req[] = [];
    if (this.faults.reorder === undefined) order.push(...batch);
    else {
      let epoch: Req[] = [];
      for (const r of batch) {
        if (r.op === BLKIF_OP.writeBarrier) {
          order.push(...this.shuffle(epoch), r);
          epoch = [];
        } else epoch.push(r);
      }
      order.push(...this.shuffle(epoch));
    }
    for (const r of order) this.dispatch(r);
  }

  // ---- dispatch: requests in flight, and barriers that drain them (blkback.c) ----

  /** Requests dispatched and not yet completed (delayMs), and those held behind a draining barrier. */
  private inFlight = 0;
  private heldBack: Req[] = [];

  // A barrier waits until every request before it has completed (xen_blk_drain_io); the requests
  // after it wait, in order, until it is dispatched (blkback's one thread is blocked meanwhile).
  private dispatch(r: Req): void {
    if (this.heldBack.length || (r.op === BLKIF_OP.writeBarrier && this.inFlight > 0)) this.heldBack.push(r);
    else this.start(r);
  }

  private start(r: Req): void {
    // The (pre-)flush covers the writes completed so far: not those still in flight.
    if (r.op === BLKIF_OP.writeBarrier || r.op === BLKIF_OP.flushDiskcache) r.flushUpTo = this.disk.writeSeq;
    const delay = this.faults.delayMs ?? 0;
    if (delay <= 0) return this.answer(r, this.execute(r));
    // A slow disk: the I/O completes later (at jittered times with reorder); the pages stay mapped meanwhile.
    this.inFlight++;
    const pages = this.hold(r);
    // The disk reads a write's pages at some time while it is in flight: at dispatch (always
    // without reorder; half the time with it) or at completion. Either may be what a real one does.
    const write = (r.indirect ? r.rwOp : r.op) !== BLKIF_OP.read && r.segs.length > 0;
    if (write && pages.length === r.segs.length && (this.faults.reorder === undefined || this.rng() < 0.5)) {
      const parts = r.segs.map((g, i) => pages[i].read(g.first * 512, (g.last - g.first + 1) * 512));
      r.captured = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((off, p) => (r.captured!.set(p, off), off + p.length), 0);
    }
    let ms = delay + (this.faults.reorder !== undefined ? this.rng() * delay : 0);
    const st = this.faults.stragglers;
    if (st && write && this.faults.reorder !== undefined && this.rng() < st.share) ms = st.ms;
    this.dom.schedule(this.dom.monotonicNs() + BigInt(Math.round(ms * 1e6)), () => {
      this.inFlight--;
      for (const m of pages) m.unmap(); // execute() maps them again to move the data
      const status = this.execute(r); // a power cut throws here: nothing more runs
      this.answer(r, status, true);
      while (this.heldBack.length && !(this.heldBack[0].op === BLKIF_OP.writeBarrier && this.inFlight > 0))
        this.start(this.heldBack.shift()!);
    });
  }

  // ---- response faults: delayed, swallowed and late answers ----

  /** Requests executed, the numbering of faults.swallow and faults.late. */
  private executed = 0;
  /** Ids of the requests swallowed, and of the late ones answered so far (tests). */
  readonly swallowed: bigint[] = [];
  readonly lateAnswered: bigint[] = [];

  // Answers now, after the delay, late or never, as the faults say (completed: the delay has passed).
  private answer(r: Req, status: number, completed = false): void {
    const n = this.executed++;
    if (this.leaves(n)) return;
    const f = this.faults;
    if (f.swallow?.includes(n)) {
      this.swallowed.push(r.id);
      if (!f.swallowUnmapped) this.hold(r);
      return;
    }
    if (f.late?.includes(n)) {
      const held = this.hold(r);
      const at = this.dom.monotonicNs() + BigInt(Math.round((f.lateMs ?? 1000) * 1e6));
      this.dom.schedule(at, () => {
        // The I/O completes now: a read's data lands in the pages, then they are unmapped and the answer goes out.
        if ((r.indirect ? r.rwOp : r.op) === BLKIF_OP.read && status === BLKIF_RSP.okay && held.length === r.segs.length) {
          const data = this.disk.read(Number(r.sector) * 512, this.nsec(r) * 512);
          let off = 0;
          for (const [i, s] of r.segs.entries()) {
            const len = (s.last - s.first + 1) * 512;
            held[i].write(s.first * 512, data.subarray(off, off + len));
            off += len;
          }
        }
        for (const m of held) m.unmap();
        this.lateAnswered.push(r.id);
        this.respond(r, status);
      });
      return;
    }
    const delay = completed ? 0 : (f.delayMs ?? 0);
    if (delay > 0) {
      // Each answer comes later; with reorder, at jittered times, so out of order.
      const jitter = f.reorder !== undefined ? this.rng() * delay : 0;
      const at = this.dom.monotonicNs() + BigInt(Math.round((delay + jitter) * 1e6));
      this.dom.schedule(at, () => this.respond(r, status));
    } else this.respond(r, status);
  }

  // Maps the request's data pages as an I/O in progress does (writable for a read); those the frontend granted.
  private hold(r: Req): GrantMapping[] {
    const read = (r.indirect ? r.rwOp : r.op) === BLKIF_OP.read;
    const held: GrantMapping[] = [];
    for (const s of r.segs) {
      try {
        held.push(this.dom.gnttab.backendMap(s.gref, !read));
      } catch {
        break; // a bad grant: the request was answered an error, nothing more to hold
      }
    }
    return held;
  }

  private shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  private bad(r: Req, why: string): number {
    this.errors.push(`request ${r.id} (${OP_NAME[r.op] ?? `op ${r.op}`}${r.indirect ? `/${OP_NAME[r.rwOp] ?? r.rwOp}` : ""}): ${why}`);
    return BLKIF_RSP.error;
  }

  // Runs one request against the disk; returns its BLKIF_RSP_* status.
  private execute(r: Req): number {
    const o = this.disk.opts;
    const op = r.indirect ? r.rwOp : r.op;
    const status = this.run(r, op, o);
    this.log.push({ op: OP_NAME[op] ?? String(op), sector: Number(r.sector), nsec: this.nsec(r), id: r.id, status });
    if (op === BLKIF_OP.write || op === BLKIF_OP.writeBarrier || op === BLKIF_OP.flushDiskcache) {
      this.writesExecuted++;
      const cut = this.faults.powerCutAfter;
      if (cut !== undefined && this.writesExecuted >= cut) {
        const seed = this.faults.cacheSurvivors;
        const coin = seed === undefined ? undefined : mulberry32(seed);
        this.disk.powerLoss(this.faults.tornWrite ?? false, coin && (() => coin() < 0.5));
        throw new PowerCutSignal(`power cut after ${this.writesExecuted} write, flush or barrier requests (disk fault injection)`);
      }
    }
    return status;
  }

  private nsec(r: Req): number {
    return r.segs.reduce((n, s) => n + (s.last - s.first + 1), 0);
  }

  private run(r: Req, op: number, o: DiskOptions): number {
    if ((r as any).bad) return this.bad(r, (r as any).bad);
    if (r.indirect && op !== BLKIF_OP.read && op !== BLKIF_OP.write) return this.bad(r, `indirect_op ${op} is neither read nor write`);
    if (this.faults.refuseOps?.includes(op)) return BLKIF_RSP.eopnotsupp;
    if (op === BLKIF_OP.flushDiskcache) {
      if (!(o.flush ?? true)) return BLKIF_RSP.eopnotsupp;
      if (r.segs.length) return this.bad(r, `a flush carries ${r.segs.length} segments`);
      this.disk.commit(r.flushUpTo);
      return BLKIF_RSP.okay;
    }
    if (op === BLKIF_OP.writeBarrier && !(o.barrier ?? true)) return BLKIF_RSP.eopnotsupp;
    if (op !== BLKIF_OP.read && op !== BLKIF_OP.write && op !== BLKIF_OP.writeBarrier) return BLKIF_RSP.eopnotsupp;
    if (r.handle !== this.devid) return this.bad(r, `handle ${r.handle} is not this device (${this.devid})`);
    if (op !== BLKIF_OP.writeBarrier && r.segs.length === 0) return this.bad(r, "no segments");
    if (op !== BLKIF_OP.read && this.disk.readOnly) return this.bad(r, "write to a read-only disk");
    const align = this.disk.sectorSize / 512;
    for (const [i, s] of r.segs.entries()) {
      if (s.first > 7 || s.last > 7 || s.first > s.last)
        return this.bad(r, `segment ${i}: sectors ${s.first}..${s.last} are not within one page`);
      if (s.first % align || (s.last + 1) % align)
        return this.bad(r, `segment ${i}: sectors ${s.first}..${s.last} split a ${this.disk.sectorSize}-byte sector`);
    }
    const nsec = this.nsec(r);
    const cap = BigInt(this.disk.sectors512);
    if (r.sector > cap || BigInt(nsec) > cap - r.sector)
      return this.bad(r, `sector ${r.sector}+${nsec} is past the end of a ${cap}-sector disk`);
    if (r.sector % BigInt(align))
      return this.bad(r, `sector ${r.sector} is not a multiple of the ${this.disk.sectorSize}-byte sector size`);
    const start = Number(r.sector);
    for (const e of this.faults.ioErrors ?? []) {
      const kind = op === BLKIF_OP.read ? "read" : "write";
      if ((e.op ?? kind) !== kind || e.sector >= start + nsec || start >= e.sector + (e.count ?? 1)) continue;
      const hits = this.ioErrorHits.get(e) ?? 0;
      if (e.times !== undefined && hits >= e.times) continue;
      this.ioErrorHits.set(e, hits + 1);
      return BLKIF_RSP.error;
    }
    // A barrier's REQ_PREFLUSH: the writes completed before it are durable before its own write,
    // which is not (no FUA in blkback.c): it stays in the cache until a later flush.
    if (op === BLKIF_OP.writeBarrier) this.disk.commit(r.flushUpTo);
    if (r.captured) {
      this.disk.write(start * 512, r.captured);
      return BLKIF_RSP.okay;
    }
    // Map every segment first: a bad grant fails the whole request before any byte moves.
    const maps: GrantMapping[] = [];
    try {
      for (const [i, s] of r.segs.entries()) {
        try {
          maps.push(this.dom.gnttab.backendMap(s.gref, op !== BLKIF_OP.read));
        } catch (e: any) {
          const ro = /read-only grant mapped writable/.test(e.message);
          return this.bad(r, `segment ${i}: ${ro ? `grant ref ${s.gref} is read-only, but a read needs a writable grant` : e.message}`);
        }
      }
      // One request is one write to the disk: a torn write tears within it.
      const data = op === BLKIF_OP.read ? this.disk.read(start * 512, nsec * 512) : new Uint8Array(nsec * 512);
      let off = 0;
      for (const [i, s] of r.segs.entries()) {
        const len = (s.last - s.first + 1) * 512;
        if (op === BLKIF_OP.read) maps[i].write(s.first * 512, data.subarray(off, off + len));
        else data.set(maps[i].read(s.first * 512, len), off);
        off += len;
      }
      if (op !== BLKIF_OP.read && nsec > 0) this.disk.write(start * 512, data);
    } finally {
      for (const m of maps) m.unmap();
    }
    return BLKIF_RSP.okay;
  }

  // Writes one struct blkif_response and notifies if the frontend asked (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY).
  private respond(r: Req, status: number): void {
    if (!this.maps.length) return; // disconnected meanwhile
    const rsp = { id: r.id, op: r.op === BLKIF_OP.indirect ? r.rwOp : r.op, status };
    this.faults.mangle?.(rsp, this.responses);
    this.responses++;
    this.outstanding--;
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, BigInt.asUintN(64, rsp.id), true);
    b[8] = rsp.op;
    dv.setInt16(10, rsp.status, true);
    this.ringWrite(this.slot(this.rspProdPvt), b);
    const old = this.u32(8);
    this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
    this.setU32(8, this.rspProdPvt);
    const event = this.u32(12);
    if ((this.rspProdPvt - event) >>> 0 < (this.rspProdPvt - old) >>> 0) {
      this.notifies++;
      this.port?.notify();
    }
  }
}

/** A small seeded PRNG (mulberry32): reproducible shuffles and seeded test runs. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The devid of the n-th disk: xvda, xvdb, ... (202 << 8 | n << 4). */
export function vbdDevid(n: number): number {
  return XVDA + 16 * n;
}
