// The xenstore wire protocol, re-declared from xen/include/public/io/xs_wire.h
// (no source copied): message header, types, error names, ring layout.

/** enum xsd_sockmsg_type (xs_wire.h). XS_RESTRICT (20) was removed upstream. */
export const XS = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

/** struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; } (xs_wire.h). */
export const HEADER_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX (xs_wire.h). */
export const PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX (xs_wire.h). */
export const ABS_PATH_MAX = 3072;
export const REL_PATH_MAX = 2048;

/** struct xenstore_domain_interface (xs_wire.h): two 1 KiB byte rings and their indices. */
export const RING = {
  SIZE: 1024, // XENSTORE_RING_SIZE
  REQ: 0,
  RSP: 1024,
  REQ_CONS: 2048,
  REQ_PROD: 2052,
  RSP_CONS: 2056,
  RSP_PROD: 2060,
  SERVER_FEATURES: 2064,
  CONNECTION: 2068,
  ERROR: 2072,
} as const;
/** XENSTORE_ERROR_RINGIDX (xs_wire.h): the server saw an invalid ring index. */
export const ERROR_RINGIDX = 2;

export interface XsMsg {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

/** Encodes one message: the 16-byte little-endian header, then the payload. */
export function encodeMsg(m: XsMsg): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + m.payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, m.type, true);
  dv.setUint32(4, m.reqId, true);
  dv.setUint32(8, m.txId, true);
  dv.setUint32(12, m.payload.length, true);
  out.set(m.payload, HEADER_SIZE);
  return out;
}

const enc = new TextEncoder();
/** NUL-terminated strings joined, as most requests and replies are. */
export function strings(...parts: string[]): Uint8Array {
  return enc.encode(parts.map((p) => p + "\0").join(""));
}
