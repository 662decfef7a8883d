// The network device wire format of xen/include/public/io/netif.h (the same on
// every ABI: no u64 fields, no padding differences): the structs re-declared as
// offsets, the flag bits, and the functions that write a request into a ring
// slot and read a response out of one. The rings (xen/ring.ts) only know bytes;
// netfront.ts decides what to send and checks what comes back. Everything in a
// response is written by the backend: read it once, then validate it.
//
//   struct netif_tx_request (12 bytes)        struct netif_tx_response (4 bytes)
//     0 u32 gref  (the page)                     0 u16 id (echoed)
//     4 u16 offset (in the page)                 2 i16 status (NETIF_RSP_*)
//     6 u16 flags (NETTXF_*)
//     8 u16 id                                 struct netif_rx_request (8 bytes)
//    10 u16 size: the whole frame in the          0 u16 id
//           first slot, this slot's bytes        2 u16 (padding)
//           in the others                        4 u32 gref (a page the backend copies into)
//
//   struct netif_rx_response (8 bytes)
//     0 u16 id (echoed)     2 u16 offset (of the data in the page)
//     4 u16 flags (NETRXF_*)   6 i16 status: < 0 a NETIF_RSP_* error, else this slot's bytes
//
// A frame spans slots: every slot but the last carries NETTXF_more_data /
// NETRXF_more_data. A TX slot never crosses its page (offset + size ≤ 4096):
// Linux's xen-netback disables the vif for good when one does. An RX response
// sits in its request's slot (netif.h: Linux netfront relies on it).
//
// The TX and RX flag bits are NOT the same bits (netif.h):
//   NETTXF: csum_blank 1<<0, data_validated 1<<1, more_data 1<<2, extra_info 1<<3
//   NETRXF: data_validated 1<<0, csum_blank 1<<1, more_data 1<<2, extra_info 1<<3

/** NETTXF_* (netif.h): flags of a netif_tx_request. */
export const NETTXF_CSUM_BLANK: u16 = 1 << 0;
export const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
export const NETTXF_MORE_DATA: u16 = 1 << 2;
export const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/** NETRXF_* (netif.h): flags of a netif_rx_response. */
export const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
export const NETRXF_CSUM_BLANK: u16 = 1 << 1;
export const NETRXF_MORE_DATA: u16 = 1 << 2;
export const NETRXF_EXTRA_INFO: u16 = 1 << 3;

/** NETIF_RSP_* (netif.h). */
export const RSP_DROPPED: i16 = -2;
export const RSP_ERROR: i16 = -1;
export const RSP_OKAY: i16 = 0;
/** For extra-info slots only (we never send one). */
export const RSP_NULL: i16 = 1;

/** XEN_NETIF_MAX_TX_SIZE: the most bytes a frame may have (its size is a u16). */
export const MAX_FRAME: i32 = 0xffff;
/** XEN_NETIF_NR_SLOTS_MIN: slots per frame every backend takes (Linux: XEN_NETBK_LEGACY_SLOTS_MAX). */
export const MAX_SLOTS: i32 = 18;
/** A slot's page. */
export const PAGE: i32 = 4096;
/** ETH_HLEN: the shortest frame a backend forwards. */
export const ETH_HLEN: i32 = 14;

// struct netif_tx_request
export const TXREQ_GREF: usize = 0;
export const TXREQ_OFFSET: usize = 4;
export const TXREQ_FLAGS: usize = 6;
export const TXREQ_ID: usize = 8;
export const TXREQ_SIZE: usize = 10;
export const TX_REQUEST_SIZE: u32 = 12;
// struct netif_tx_response
export const TXRSP_ID: usize = 0;
export const TXRSP_STATUS: usize = 2;
/** A TX ring slot: the larger of request (12) and response (4), DEFINE_RING_TYPES' union. */
export const TX_ENTRY_SIZE: u32 = TX_REQUEST_SIZE;

// struct netif_rx_request
export const RXREQ_ID: usize = 0;
export const RXREQ_GREF: usize = 4;
// struct netif_rx_response
export const RXRSP_ID: usize = 0;
export const RXRSP_OFFSET: usize = 2;
export const RXRSP_FLAGS: usize = 4;
export const RXRSP_STATUS: usize = 6;
/** An RX ring slot: request and response are both 8 bytes. */
export const RX_ENTRY_SIZE: u32 = 8;

/** Writes a struct netif_tx_request at `slot`. */
export function writeTxRequest(slot: usize, gref: u32, offset: u16, flags: u16, id: u16, size: u16): void {
  store<u32>(slot + TXREQ_GREF, gref);
  store<u16>(slot + TXREQ_OFFSET, offset);
  store<u16>(slot + TXREQ_FLAGS, flags);
  store<u16>(slot + TXREQ_ID, id);
  store<u16>(slot + TXREQ_SIZE, size);
}

/** Writes a struct netif_rx_request at `slot` (its padding zeroed). */
export function writeRxRequest(slot: usize, id: u16, gref: u32): void {
  store<u16>(slot + RXREQ_ID, id);
  store<u16>(slot + RXREQ_ID + 2, 0);
  store<u32>(slot + RXREQ_GREF, gref);
}

/** A struct netif_tx_response copied out of its slot: the backend's, to be checked before use. */
export class TxResponse {
  id: u16 = 0;
  status: i16 = 0;

  /** Reads the response at `slot` once (the backend could change the slot while we look at it). */
  read(slot: usize): TxResponse {
    this.id = load<u16>(slot + TXRSP_ID);
    this.status = load<i16>(slot + TXRSP_STATUS);
    return this;
  }
}

/** A struct netif_rx_response copied out of its slot: the backend's, to be checked before use. */
export class RxResponse {
  id: u16 = 0;
  offset: u16 = 0;
  flags: u16 = 0;
  status: i16 = 0;

  /** Reads the response at `slot` once. */
  read(slot: usize): RxResponse {
    this.id = load<u16>(slot + RXRSP_ID);
    this.offset = load<u16>(slot + RXRSP_OFFSET);
    this.flags = load<u16>(slot + RXRSP_FLAGS);
    this.status = load<i16>(slot + RXRSP_STATUS);
    return this;
  }
}

/** A NETIF_RSP_* status's name for error messages. */
export function statusName(s: i16): string {
  if (s == RSP_OKAY) return "NETIF_RSP_OKAY";
  if (s == RSP_ERROR) return "NETIF_RSP_ERROR";
  if (s == RSP_DROPPED) return "NETIF_RSP_DROPPED";
  if (s == RSP_NULL) return "NETIF_RSP_NULL";
  return "status " + s.toString();
}
