// A generic shared request/response ring with the semantics of Xen's
// xen/include/public/io/ring.h, over one or more contiguous 4 KiB pages. It
// knows only memory: the area's address and byte length, the entry size and the
// indices; device protocols (block, net) lay out their entries on top
// (block/blkif.ts), and the grant/event plumbing lives elsewhere.
//
//   offset  0  req_prod   u32   written by the front end
//           4  req_event  u32   written by the back end: "notify me at this req_prod"
//           8  rsp_prod   u32   written by the back end
//          12  rsp_event  u32   written by the front end
//          16  private padding up to 64 (ring.h's __pvt)
//          64  entries: nr_ents slots of max(request, response) bytes
//
// nr_ents is __RING_SIZE: the largest power of two of entries that fit in the
// area after the header, so a ring of 2^order pages (blkif.h's ring-page-order,
// 4096 << order bytes) has more slots with the same layout.
//
// Indices are free-running u32s that wrap at 2^32; a slot is index & (nr_ents - 1).
// Everything read from the page is written by the other side and is hostile:
// index differences are checked before they are used.
import { mb, rmb, wmb } from "./barrier";

export const SRING_REQ_PROD: usize = 0;
export const SRING_REQ_EVENT: usize = 4;
export const SRING_RSP_PROD: usize = 8;
export const SRING_RSP_EVENT: usize = 12;
/** offsetof(struct sring, ring) in ring.h. */
export const SRING_HEADER: usize = 64;
/** The bytes of a one-page ring. */
export const PAGE: u32 = 4096;

/** __RING_SIZE: the largest power of two of entries that fit in `bytes` after the header. */
export function ringSize(entrySize: u32, bytes: u32 = PAGE): u32 {
  if (bytes <= <u32>SRING_HEADER) return 0;
  const n = (bytes - <u32>SRING_HEADER) / entrySize;
  if (n == 0) return 0;
  return 1 << (31 - clz(n));
}

/** SHARED_RING_INIT, with the indices starting at `start` (0 on Xen; tests pick 2^32 - 16). */
export function initShared(sring: usize, start: u32 = 0): void {
  store<u32>(sring + SRING_REQ_PROD, start);
  store<u32>(sring + SRING_RSP_PROD, start);
  store<u32>(sring + SRING_REQ_EVENT, start + 1);
  store<u32>(sring + SRING_RSP_EVENT, start + 1);
  memory.fill(sring + 16, 0, SRING_HEADER - 16);
}

/** Whether the side that moved an index from `old` to `now` must notify (RING_PUSH_*_AND_CHECK_NOTIFY). */
// @ts-ignore: decorator
@inline function needNotify(now: u32, old: u32, event: u32): bool {
  // The peer asked to be woken when the index passes `event`: did this push cross it?
  return now - event < now - old;
}

/** What both ends share: the area, its slot count, and a slot's address. */
export class Ring {
  /** Slots in the ring: ringSize(entrySize, bytes). */
  readonly nrEnts: u32;
  /** Set when the other end published impossible indices; the ring must not be used further. */
  corrupt: bool = false;

  constructor(
    /** The shared area: `bytes` of contiguous memory, the header first. */
    public sring: usize,
    /** max(sizeof request, sizeof response): DEFINE_RING_TYPES' union. */
    public entrySize: u32,
    public bytes: u32,
  ) {
    this.nrEnts = ringSize(entrySize, bytes);
  }

  /** The address of slot idx & (nr_ents - 1) (RING_GET_REQUEST / RING_GET_RESPONSE). */
  slot(idx: u32): usize {
    return this.sring + SRING_HEADER + <usize>(idx & (this.nrEnts - 1)) * this.entrySize;
  }
}

/** The front end: produces requests, consumes responses (FRONT_RING_* in ring.h). */
export class FrontRing extends Ring {
  reqProdPvt: u32;
  rspCons: u32;

  /** A front ring over `bytes` of shared memory at sring (one page by default). */
  constructor(sring: usize, entrySize: u32, bytes: u32 = PAGE) {
    super(sring, entrySize, bytes);
    // FRONT_RING_ATTACH: start from whatever the shared indices say.
    this.reqProdPvt = load<u32>(sring + SRING_REQ_PROD);
    this.rspCons = load<u32>(sring + SRING_RSP_PROD);
  }

  /** RING_FREE_REQUESTS. */
  freeRequests(): u32 {
    return this.nrEnts - (this.reqProdPvt - this.rspCons);
  }

  /** The slot for the next request (RING_GET_REQUEST at req_prod_pvt++), or 0 when full. */
  nextRequest(): usize {
    if (this.freeRequests() == 0) return 0;
    const slot = this.slot(this.reqProdPvt);
    this.reqProdPvt++;
    return slot;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publishes the new requests; true if the back end must be notified. */
  pushRequests(): bool {
    const old = load<u32>(this.sring + SRING_REQ_PROD);
    const now = this.reqProdPvt;
    wmb(); // the request bodies are written before req_prod says they exist
    store<u32>(this.sring + SRING_REQ_PROD, now);
    mb(); // req_prod is visible before req_event is read: else both sides could wait
    return needNotify(now, old, load<u32>(this.sring + SRING_REQ_EVENT));
  }

  /** RING_HAS_UNCONSUMED_RESPONSES, or -1 when rsp_prod claims more responses than requests made. */
  unconsumedResponses(): i32 {
    const prod = load<u32>(this.sring + SRING_RSP_PROD);
    rmb(); // rsp_prod is read before the responses it covers
    const n = prod - this.rspCons;
    if (n > this.reqProdPvt - this.rspCons) {
      this.corrupt = true;
      return -1;
    }
    return <i32>n;
  }

  /** The slot of the next response (RING_GET_RESPONSE at rsp_cons++); call after unconsumedResponses() > 0. */
  nextResponse(): usize {
    const slot = this.slot(this.rspCons);
    this.rspCons++;
    return slot;
  }

  /**
   * RING_FINAL_CHECK_FOR_RESPONSES: asks to be notified at the next response,
   * then checks again so a response that raced with the request is not missed.
   */
  finalCheckForResponses(): i32 {
    const n = this.unconsumedResponses();
    if (n != 0) return n;
    // Reading the slots is done: the back end may reuse them once rsp_event moves.
    mb();
    store<u32>(this.sring + SRING_RSP_EVENT, this.rspCons + 1);
    mb(); // rsp_event is visible before rsp_prod is read again
    return this.unconsumedResponses();
  }
}

/** The back end: consumes requests, produces responses (BACK_RING_* in ring.h). */
export class BackRing extends Ring {
  reqCons: u32;
  rspProdPvt: u32;

  /** A back ring over `bytes` of shared memory at sring (one page by default). */
  constructor(sring: usize, entrySize: u32, bytes: u32 = PAGE) {
    super(sring, entrySize, bytes);
    this.reqCons = load<u32>(sring + SRING_RSP_PROD);
    this.rspProdPvt = this.reqCons;
  }

  /** RING_UNCONSUMED_REQUESTS, or -1 when req_prod is beyond what the ring can hold. */
  unconsumedRequests(): i32 {
    const prod = load<u32>(this.sring + SRING_REQ_PROD);
    rmb(); // req_prod is read before the requests it covers
    const req = prod - this.reqCons;
    const room = this.nrEnts - (this.reqCons - this.rspProdPvt);
    if (req > this.nrEnts) {
      this.corrupt = true;
      return -1;
    }
    return <i32>min(req, room);
  }

  /** The slot of the next request (req_cons++); call after unconsumedRequests() > 0. */
  nextRequest(): usize {
    const slot = this.slot(this.reqCons);
    this.reqCons++;
    return slot;
  }

  /** The slot for the next response (rsp_prod_pvt++). */
  nextResponse(): usize {
    const slot = this.slot(this.rspProdPvt);
    this.rspProdPvt++;
    return slot;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: true if the front end must be notified. */
  pushResponses(): bool {
    const old = load<u32>(this.sring + SRING_RSP_PROD);
    const now = this.rspProdPvt;
    wmb(); // the response bodies are written before rsp_prod says they exist
    store<u32>(this.sring + SRING_RSP_PROD, now);
    mb(); // rsp_prod is visible before rsp_event is read
    return needNotify(now, old, load<u32>(this.sring + SRING_RSP_EVENT));
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: asks to be notified at the next request, then re-checks. */
  finalCheckForRequests(): i32 {
    const n = this.unconsumedRequests();
    if (n != 0) return n;
    store<u32>(this.sring + SRING_REQ_EVENT, this.reqCons + 1);
    mb(); // req_event is visible before req_prod is read again
    return this.unconsumedRequests();
  }
}
