// The block device wire format of xen/include/public/io/blkif.h, x86_64 ABI
// ("protocol" = "x86_64-abi"), re-declared as offsets: the ring (xen/ring.ts)
// only knows bytes, and everything in a response is written by the backend.
//
//   struct blkif_request (112 bytes)          struct blkif_response (16 bytes)
//     0 u8  operation                           0 u64 id (echoed from the request)
//     1 u8  nr_segments (≤ 11)                  8 u8  operation
//     2 u16 handle (the vdev number)           10 i16 status (BLKIF_RSP_*)
//     8 u64 id
//    16 u64 sector_number (512-byte units)    struct blkif_request_segment (8 bytes)
//    24 seg[11]                                 0 u32 gref
//                                               4 u8  first_sect (0..7, in the page)
//   struct blkif_request_indirect (64 bytes)    5 u8  last_sect  (first..7)
//     0 u8  operation = BLKIF_OP_INDIRECT
//     1 u8  indirect_op (READ or WRITE)
//     2 u16 nr_segments (≤ feature-max-indirect-segments)
//     8 u64 id
//    16 u64 sector_number
//    24 u16 handle
//    28 u32 indirect_grefs[8]: pages of 512 blkif_request_segments each
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

// struct blkif_response
export const RSP_ID: usize = 0;
export const RSP_OPERATION: usize = 8;
export const RSP_STATUS: usize = 10;
export const RESPONSE_SIZE: u32 = 16;

/** A ring slot holds the larger of request and response (DEFINE_RING_TYPES' union). */
export const ENTRY_SIZE: u32 = REQUEST_SIZE;

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
