// The xenstore wire format, re-declared from xen/include/public/io/xs_wire.h.
//
//   struct xsd_sockmsg {          message header, little-endian, 16 bytes
//     uint32_t type;              XS_* below
//     uint32_t req_id;            echoed in the reply
//     uint32_t tx_id;             transaction, 0 for none
//     uint32_t len;               payload bytes that follow (≤ XENSTORE_PAYLOAD_MAX)
//   };
//
//   struct xenstore_domain_interface {   the ring page
//     char req[1024]; char rsp[1024];    XENSTORE_RING_SIZE each
//     uint32_t req_cons, req_prod, rsp_cons, rsp_prod;
//     uint32_t server_features, connection, error;
//   };

// enum xsd_sockmsg_type
export const XS_CONTROL: u32 = 0;
export const XS_DIRECTORY: u32 = 1;
export const XS_READ: u32 = 2;
export const XS_GET_PERMS: u32 = 3;
export const XS_WATCH: u32 = 4;
export const XS_UNWATCH: u32 = 5;
export const XS_TRANSACTION_START: u32 = 6;
export const XS_TRANSACTION_END: u32 = 7;
export const XS_GET_DOMAIN_PATH: u32 = 10;
export const XS_WRITE: u32 = 11;
export const XS_MKDIR: u32 = 12;
export const XS_RM: u32 = 13;
export const XS_SET_PERMS: u32 = 14;
export const XS_WATCH_EVENT: u32 = 15;
export const XS_ERROR: u32 = 16;
export const XS_RESET_WATCHES: u32 = 21;

export const HEADER_SIZE: i32 = 16;
/** XENSTORE_PAYLOAD_MAX. */
export const PAYLOAD_MAX: u32 = 4096;

// struct xenstore_domain_interface offsets.
export const RING_SIZE: u32 = 1024;
export const RING_REQ: usize = 0;
export const RING_RSP: usize = 1024;
export const RING_REQ_CONS: usize = 2048;
export const RING_REQ_PROD: usize = 2052;
export const RING_RSP_CONS: usize = 2056;
export const RING_RSP_PROD: usize = 2060;
export const RING_ERROR: usize = 2072;

/** xsd_errors[]: the names XS_ERROR carries, and their errno values. */
const ERR_NAMES: string[] = ["EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO", "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM"];
const ERR_NUMS: i32[] = [22, 13, 17, 21, 2, 12, 28, 5, 39, 38, 30, 16, 11, 106, 7, 1];

/** errno for an XS_ERROR name, or 0 when the name is not one xenstored sends. */
export function errnoOf(name: string): i32 {
  const i = ERR_NAMES.indexOf(name);
  return i < 0 ? 0 : ERR_NUMS[i];
}

/** Writes a header at p. */
export function putHeader(p: usize, type: u32, reqId: u32, txId: u32, len: u32): void {
  store<u32>(p, type);
  store<u32>(p + 4, reqId);
  store<u32>(p + 8, txId);
  store<u32>(p + 12, len);
}

/** A request: header + payload, ready for the ring. */
export function encode(type: u32, reqId: u32, txId: u32, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  putHeader(out.dataStart, type, reqId, txId, payload.length);
  memory.copy(out.dataStart + HEADER_SIZE, payload.dataStart, payload.length);
  return out;
}

/** Payload of NUL-terminated strings (most requests). */
export function strings(parts: string[]): Uint8Array {
  let n = 0;
  const enc = new Array<ArrayBuffer>(parts.length);
  for (let i = 0; i < parts.length; i++) {
    enc[i] = String.UTF8.encode(parts[i]);
    n += enc[i].byteLength + 1;
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    memory.copy(out.dataStart + at, changetype<usize>(enc[i]), enc[i].byteLength);
    at += enc[i].byteLength + 1; // the NUL is already 0
  }
  return out;
}

/** A path, a NUL, then the raw value (XS_WRITE). */
export function pathAndValue(path: string, value: string): Uint8Array {
  const p = String.UTF8.encode(path);
  const v = String.UTF8.encode(value);
  const out = new Uint8Array(p.byteLength + 1 + v.byteLength);
  memory.copy(out.dataStart, changetype<usize>(p), p.byteLength);
  memory.copy(out.dataStart + p.byteLength + 1, changetype<usize>(v), v.byteLength);
  return out;
}

/** Splits a payload of NUL-terminated strings; null when it does not end with a NUL. */
export function splitStrings(b: Uint8Array): string[] | null {
  const out = new Array<string>();
  if (b.length == 0) return out;
  if (b[b.length - 1] != 0) return null;
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] != 0) continue;
    out.push(String.UTF8.decodeUnsafe(b.dataStart + start, i - start));
    start = i + 1;
  }
  return out;
}
