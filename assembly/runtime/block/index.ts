// The block API: a virtual disk as sector ranges read, written and flushed with
// asynchronous completion, in page-sized buffers from a pool. No filesystem:
// the database writes straight to the device (Mirage paper §3.3).
//
//   const op = sched.wait(block.open());          // the first vbd, or open("51712")
//   if (!op.ok) panic(op.error);
//   const dev = op.device!;
//   const pool = new block.BufferPool(16);
//   const page = pool.get();
//   sched.wait(dev.write(0, [page]));              // 4 KiB at sector 0
//   sched.wait(dev.flush());                       // durable
//
// Sectors are in the disk's own units (info().sectorSize, 512 or 4096); each
// buffer is a 4 KiB I/O page, and a request of n pages moves n × 4096 bytes,
// or `count` sectors when given (the last page then partly used). Errors are
// rejections naming the device: "vbd 51712: write to a read-only disk".
// Cancelling a request that reached the ring does not stop the backend: keep
// its pages until inFlight() says it is done.
//
// Deadlines and page ownership (blkfront.ts). A request's pages are the
// device's from submit until the op has settled with `op.shared` false; only
// then may they be reused or returned to a BufferPool. A request the backend
// leaves unanswered for dev.front.requestTimeoutNs (REQUEST_TIMEOUT_NS, 30 s)
// fails the device, since a backend that loses a request is broken and a write
// it still holds could land after a newer one: that request and every other
// queued or in flight reject with "vbd 51712: write of sector 2064+16: no
// response from the backend in 30 s", and later requests are refused at once.
// Any device failure (that one, or a protocol violation) settles an in-flight
// request only once the backend has unmapped its pages, or after
// dev.front.unmapWaitNs (UNMAP_WAIT_NS, 5 s) with `op.shared` true: those pages
// stay the backend's for good and MUST NOT be reused, returned to a pool or
// freed. So a batch is finished when every op has settled (sched.AllSettled),
// and its pages are free when, besides, no op has `shared` set.
import * as abi from "../abi";
import * as iopage from "../iopage";
import { Future, Task, spawn } from "../sched";
import { Xenstore, XsReply } from "../xen/xenstore";
import * as xenstore from "../xen/xenstore";
import { BlockOp, Blkfront } from "./blkfront";
import { Connect, Disconnect, Info, OpenOptions } from "./blkfront-xs";
import * as b from "./blkif";

export { BlockOp } from "./blkfront";
/** What the device offers, as negotiated (sectors, sectorSize, readOnly, flush, barrier, maxPages ...). */
export { Info, OpenOptions } from "./blkfront-xs";

const PAGE: u32 = 4096;

export class Device {
  constructor(
    public front: Blkfront,
    private connect: Connect,
  ) {}

  info(): Info {
    return this.connect.info;
  }

  get name(): string {
    return this.front.name;
  }

  /** Reads sectors [sector, sector + count) into the pages (count 0: the pages' worth). */
  read(sector: u64, pages: Array<usize>, count: u32 = 0): BlockOp {
    return this.rw(b.OP_READ, sector, pages, count);
  }

  /** Writes the pages to sectors [sector, sector + count). Complete, not durable: see flush(). */
  write(sector: u64, pages: Array<usize>, count: u32 = 0): BlockOp {
    return this.rw(b.OP_WRITE, sector, pages, count);
  }

  /**
   * A write the backend runs after every earlier request has completed, and makes those
   * durable first (BLKIF_OP_WRITE_BARRIER; Linux's xen-blkback: drain, then REQ_PREFLUSH
   * with the write). The barrier write itself is not durable until a later flush()
   * completes, and later requests may complete before it.
   */
  barrier(sector: u64, pages: Array<usize>, count: u32 = 0): BlockOp {
    if (!this.connect.info.barrier) return this.refuse(b.OP_WRITE_BARRIER, "the backend offers no write barriers (feature-barrier)");
    return this.rw(b.OP_WRITE_BARRIER, sector, pages, count);
  }

  /** Makes every completed write durable: a cache flush, or an empty barrier when only that is offered. */
  flush(): BlockOp {
    const i = this.connect.info;
    if (i.flush) return this.front.submit(new BlockOp(b.OP_FLUSH_DISKCACHE, 0, 0, new Array<usize>(), "flush"));
    if (i.barrier) return this.front.submit(new BlockOp(b.OP_WRITE_BARRIER, 0, 0, new Array<usize>(), "flush (as an empty barrier)"));
    return this.refuse(b.OP_FLUSH_DISKCACHE, "the backend offers neither feature-flush-cache nor feature-barrier: writes cannot be made durable");
  }

  /** Requests queued or on the ring. */
  inFlight(): i32 {
    return this.front.inFlight;
  }

  /** Waits for every request, then disconnects (xenbus Closing → Closed) and frees the ring. */
  close(): Future {
    return spawn(new Disconnect(this.front, this.connect.fe, this.connect.ringRefs, this.connect.opts.unmapTimeoutNs));
  }

  private rw(op: u8, sector: u64, pages: Array<usize>, count: u32): BlockOp {
    const i = this.connect.info;
    const n = pages.length;
    const perPage = PAGE / i.sectorSize;
    const name = op == b.OP_READ ? "read" : op == b.OP_WRITE ? "write" : "barrier write";
    if (op != b.OP_READ && i.readOnly) return this.refuse(op, name + " to a read-only disk");
    if (n == 0) return this.refuse(op, "a " + name + " needs at least one page");
    if (n > i.maxPages)
      return this.refuse(op, n.toString() + " pages in one request: the backend takes at most " + i.maxPages.toString() +
        (i.indirectSegments == 0 ? " (it offers no indirect descriptors)" : ""));
    for (let k = 0; k < n; k++) {
      const p = pages[k];
      if (p == 0 || (p & (<usize>PAGE - 1)) != 0)
        return this.refuse(op, "buffer 0x" + p.toString(16) + " is not a 4 KiB-aligned I/O page");
    }
    const full = <u64>n * <u64>perPage;
    const cnt: u64 = count == 0 ? full : <u64>count;
    if (cnt > full)
      return this.refuse(op, cnt.toString() + " sectors do not fit in " + n.toString() + (n == 1 ? " page" : " pages") + " of " + perPage.toString() + " sectors");
    if (cnt <= full - <u64>perPage)
      return this.refuse(op, cnt.toString() + " sectors leave page " + (n - 1).toString() + " unused: pass fewer pages");
    if (sector > i.sectors || cnt > i.sectors - sector)
      return this.refuse(op, "sector " + sector.toString() + "+" + cnt.toString() + " past the end of a " + i.sectors.toString() + "-sector disk");
    const shift = <u64>(i.sectorSize >> b.SECTOR_SHIFT);
    const what = name + " of sector " + sector.toString() + "+" + cnt.toString();
    return this.front.submit(new BlockOp(op, sector * shift, <u32>(cnt * shift), pages, what));
  }

  private refuse(op: u8, why: string): BlockOp {
    const r = new BlockOp(op, 0, 0, new Array<usize>(), why);
    r.reject(this.front.name + ": " + why);
    return r;
  }
}

/** The result of open(): `device` once resolved. */
export class OpenOp extends Task {
  device: Device | null = null;
  stage: i32 = 0;
  list: XsReply | null = null;
  connect: Connect | null = null;
  constructor(
    public xs: Xenstore,
    public devid: string,
    public opts: OpenOptions,
  ) {
    super();
  }
  step(): void {
    const a = this.awaited;
    if (this.stage == 0 && this.devid == "") {
      this.stage = 1;
      this.await((this.list = this.xs.directory("device/vbd")));
      return;
    }
    if (this.stage == 1) {
      const l = this.list!;
      if (!l.ok && l.errno != abi.ENOENT && l.errno != abi.EACCES) return this.fail("block: listing the virtual disks: " + l.error);
      const ids = l.ok ? l.list() : new Array<string>();
      if (ids.length == 0) return this.fail("block: no virtual disk — is there a disk line in the xl config?");
      // The lowest device number is the first disk (xvda = 51712).
      let best = ids[0];
      for (let k = 1; k < ids.length; k++) if (I64.parseInt(ids[k]) < I64.parseInt(best)) best = ids[k];
      this.devid = best;
    }
    if (this.stage <= 1) {
      this.stage = 2;
      this.await((this.connect = spawn(new Connect(this.xs, this.devid, this.opts))));
      return;
    }
    if (a!.failed) return this.fail(a!.error);
    const c = this.connect!;
    this.device = new Device(c.front!, c);
    this.finish();
  }
}

/**
 * Connects to a virtual disk: devid as in device/vbd/<devid> ("" = the first one).
 * Every wait has a deadline (opts; defaults: 10 s per xenstore request, 30 s per
 * backend state while connecting, 5 s for the close): a backend or xenstored
 * that never answers makes open() or close() reject, naming the device and the state.
 */
export function open(devid: string = "", opts: OpenOptions | null = null): OpenOp {
  return spawn(new OpenOp(xenstore.open(), devid, opts ? opts : new OpenOptions()));
}

/** Page buffers for requests, so callers do not allocate per request; I/O pages, never heap. */
export class BufferPool {
  private free: Array<usize> = new Array<usize>();
  /** Pages this pool owns. */
  size: i32 = 0;
  constructor(pages: i32 = 0) {
    for (let k = 0; k < pages; k++) {
      const p = iopage.alloc();
      if (p == 0) break;
      this.free.push(p);
      this.size++;
    }
  }

  /** A page (zeroed only when new), or 0 when memory is exhausted. Grows on demand. */
  get(): usize {
    if (this.free.length > 0) return this.free.pop();
    const p = iopage.alloc();
    if (p != 0) this.size++;
    return p;
  }

  /** Pages for one request; empty when memory is exhausted (the ones taken are returned). */
  take(n: i32): Array<usize> {
    const out = new Array<usize>();
    for (let k = 0; k < n; k++) {
      const p = this.get();
      if (p == 0) {
        this.putAll(out);
        return new Array<usize>();
      }
      out.push(p);
    }
    return out;
  }

  put(page: usize): void {
    if ((page & (<usize>PAGE - 1)) != 0) throw new Error("BufferPool.put: 0x" + page.toString(16) + " is not a page");
    this.free.push(page);
  }

  putAll(pages: Array<usize>): void {
    for (let k = 0; k < pages.length; k++) this.put(pages[k]);
  }

  /** Pages ready to hand out. */
  available(): i32 {
    return this.free.length;
  }
}
