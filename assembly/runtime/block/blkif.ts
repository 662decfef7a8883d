// The block device wire format of xen/include/public/io/blkif.h, x86_64 ABI
// ("protocol" = "x86_64-abi"): the structs re-declared as offsets, and the
// functions that write a request into a ring slot and read a response out of
// one. The ring (xen/ring.ts) only knows bytes; this module only knows the
// layout; blkfront.ts decides what to send and checks what comes back.
// Everything in a response is written by the backend: read it once (Response),
// then validate it before use.
//
//   struct blkif_request (112 bytes)          struct blkif_response (16 bytes)
//     0 u8  operation                           0 u64 id (echoed from the request)
//     1 u8  nr_segments (≤ 11)                  8 u8  operation
//     2 u16 handle (the vdev number)            9 u8  (padding)
//     4 u32 (padding)                          10 i16 status (BLKIF_RSP_*)
//     8 u64 id                                 12 u32 (padding)
//    16 u64 sector_number (512-byte units)
//    24 seg[11]                               struct blkif_request_segment (8 bytes)
//                                               0 u32 gref
//   struct blkif_request_indirect (64 bytes)    4 u8  first_sect (0..7, in the page)
//     0 u8  operation = BLKIF_OP_INDIRECT       5 u8  last_sect  (first..7)
//     1 u8  indirect_op (READ or WRITE)         6 u16 (padding)
//     2 u16 nr_segments (≤ feature-max-indirect-segments)
//     4 u32 (padding)
//     8 u64 id
//    16 u64 sector_number
//    24 u16 handle
//    26 u16 (padding)
//    28 u32 indirect_grefs[8]: pages of 512 blkif_request_segments each
//    60 u32 (padding)
//
// We zero every padding byte we send: the backend ignores them, and a slot
// otherwise still holds the bytes of the response it carried before.
//
// Sector numbers and first/last_sect are always 512-byte units, whatever the
// disk's sector-size (blkif.h, "sector-size").

/** BLKIF_OP_* (blkif.h). */
export const OP_READ: u8 = 0;
export const OP_WRITE: u8 = 1;
export const OP_WRITE_BARRIER: u8 = 2;
export const OP_FLUSH_DISKCACHE: u8 = 3;
export const OP_DISCARD: u8 = 5;
export const OP_INDIRECT: u8 = 6;

/** BLKIF_RSP_* (blkif.h). */
export const RSP_OKAY: i16 = 0;
export const RSP_ERROR: i16 = -1;
export const RSP_EOPNOTSUPP: i16 = -2;

/** VDISK_* bits of the backend's "info" key (blkif.h). */
export const VDISK_CDROM: u32 = 1;
export const VDISK_REMOVABLE: u32 = 2;
export const VDISK_READONLY: u32 = 4;

/** BLKIF_MAX_SEGMENTS_PER_REQUEST: segments of a direct request. */
export const MAX_SEGMENTS: i32 = 11;
/** BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST. */
export const MAX_INDIRECT_PAGES: i32 = 8;
/** Segments per indirect page: 4096 / sizeof(struct blkif_request_segment). */
export const SEGS_PER_INDIRECT_PAGE: i32 = 512;
/** 512-byte ring sectors per 4 KiB page. */
export const SECTORS_PER_PAGE: u32 = 8;
export const SECTOR_SHIFT: u32 = 9;

// struct blkif_request
export const REQ_OPERATION: usize = 0;
export const REQ_NR_SEGMENTS: usize = 1;
export const REQ_HANDLE: usize = 2;
export const REQ_ID: usize = 8;
export const REQ_SECTOR: usize = 16;
export const REQ_SEG: usize = 24;
export const REQUEST_SIZE: u32 = 112;

// struct blkif_request_segment
export const SEG_GREF: usize = 0;
export const SEG_FIRST_SECT: usize = 4;
export const SEG_LAST_SECT: usize = 5;
export const SEG_SIZE: usize = 8;

// struct blkif_request_indirect
export const IND_OPERATION: usize = 0;
export const IND_OP: usize = 1;
export const IND_NR_SEGMENTS: usize = 2;
export const IND_ID: usize = 8;
export const IND_SECTOR: usize = 16;
export const IND_HANDLE: usize = 24;
export const IND_GREFS: usize = 28;
export const INDIRECT_SIZE: usize = 64;

// struct blkif_response
export const RSP_ID: usize = 0;
export const RSP_OPERATION: usize = 8;
export const RSP_STATUS: usize = 10;
export const RESPONSE_SIZE: u32 = 16;

/** A ring slot holds the larger of request and response (DEFINE_RING_TYPES' union). */
export const ENTRY_SIZE: u32 = REQUEST_SIZE;

/** Writes a struct blkif_request at `slot`; its nr_segments segments follow (segmentOf, writeSegment). */
export function writeRequest(slot: usize, op: u8, nrSegments: u8, handle: u16, id: u64, sector: u64): void {
  store<u8>(slot + REQ_OPERATION, op);
  store<u8>(slot + REQ_NR_SEGMENTS, nrSegments);
  store<u16>(slot + REQ_HANDLE, handle);
  store<u32>(slot + REQ_HANDLE + 2, 0);
  store<u64>(slot + REQ_ID, id);
  store<u64>(slot + REQ_SECTOR, sector);
}

/** The address of segment i of a direct request at `slot`. */
// @ts-ignore: decorator
@inline export function segmentOf(slot: usize, i: i32): usize {
  return slot + REQ_SEG + <usize>i * SEG_SIZE;
}

/** The address of segment i in an indirect page (SEGS_PER_INDIRECT_PAGE per page). */
// @ts-ignore: decorator
@inline export function indirectSegmentOf(page: usize, i: i32): usize {
  return page + <usize>i * SEG_SIZE;
}

/** Writes a struct blkif_request_segment at `at`: sectors first..last (512-byte units) of the granted page. */
export function writeSegment(at: usize, gref: u32, firstSect: u8, lastSect: u8): void {
  store<u32>(at + SEG_GREF, gref);
  store<u8>(at + SEG_FIRST_SECT, firstSect);
  store<u8>(at + SEG_LAST_SECT, lastSect);
  store<u16>(at + SEG_LAST_SECT + 1, 0);
}

/**
 * Writes a struct blkif_request_indirect at `slot` for `op` (READ or WRITE) of
 * nrSegments segments, all in the one indirect page granted as `gref` (we never
 * use more than one: its other indirect_grefs are 0).
 */
export function writeIndirectRequest(slot: usize, op: u8, nrSegments: u16, handle: u16, id: u64, sector: u64, gref: u32): void {
  store<u8>(slot + IND_OPERATION, OP_INDIRECT);
  store<u8>(slot + IND_OP, op);
  store<u16>(slot + IND_NR_SEGMENTS, nrSegments);
  store<u32>(slot + IND_NR_SEGMENTS + 2, 0);
  store<u64>(slot + IND_ID, id);
  store<u64>(slot + IND_SECTOR, sector);
  store<u16>(slot + IND_HANDLE, handle);
  store<u16>(slot + IND_HANDLE + 2, 0);
  store<u32>(slot + IND_GREFS, gref);
  memory.fill(slot + IND_GREFS + 4, 0, INDIRECT_SIZE - IND_GREFS - 4);
}

/** A struct blkif_response copied out of its slot: every field is the backend's, to be checked before use. */
export class Response {
  id: u64 = 0;
  operation: u8 = 0;
  status: i16 = 0;

  /** Reads the response at `slot` once (the backend could change the slot while we look at it). */
  read(slot: usize): Response {
    this.id = load<u64>(slot + RSP_ID);
    this.operation = load<u8>(slot + RSP_OPERATION);
    this.status = load<i16>(slot + RSP_STATUS);
    return this;
  }
}

/** The operation's name for error messages. */
export function opName(op: u8): string {
  if (op == OP_READ) return "read";
  if (op == OP_WRITE) return "write";
  if (op == OP_WRITE_BARRIER) return "barrier write";
  if (op == OP_FLUSH_DISKCACHE) return "flush";
  if (op == OP_DISCARD) return "discard";
  if (op == OP_INDIRECT) return "indirect";
  return "operation " + op.toString();
}
