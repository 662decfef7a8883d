// lwIP 2.1.3's raw API and Morgana's glue (lwip/glue.c), as the app imports them from the
// native module (app.json "native": ["lwip"]; module "native", sharing env.memory).
// Pointers are offsets in that one memory; IPv4 addresses cross as u32 holding the four
// bytes in network order in memory (lwIP's ip4_addr_t.addr). Only stack.ts, tcp.ts and
// udp.ts call these, and only from the stack task (stack.ts): lwIP is not reentrant, and
// its callbacks (exports.ts) only record what happened.
//
// Declarations are imports only where code uses them: an app that never brings the
// network up imports none of them.

// --- core, interface, timers (lwip/init.h, lwip/netif.h, lwip/timeouts.h) ---
@external("native", "lwip_init") export declare function lwip_init(): void;
@external("native", "sys_check_timeouts") export declare function sys_check_timeouts(): void;
@external("native", "netif_set_up") export declare function netif_set_up(netif: usize): void;
@external("native", "netif_set_link_up") export declare function netif_set_link_up(netif: usize): void;
@external("native", "netif_set_link_down") export declare function netif_set_link_down(netif: usize): void;
@external("native", "dhcp_start") export declare function dhcp_start(netif: usize): i32;
@external("native", "dhcp_stop") export declare function dhcp_stop(netif: usize): void;

// --- pbufs (lwip/pbuf.h); lengths and offsets are u16 in lwIP ---
@external("native", "pbuf_alloc") export declare function pbuf_alloc(layer: i32, length: u32, type: i32): usize;
@external("native", "pbuf_free") export declare function pbuf_free(p: usize): u32;
@external("native", "pbuf_take") export declare function pbuf_take(p: usize, data: usize, len: u32): i32;
@external("native", "pbuf_copy_partial") export declare function pbuf_copy_partial(p: usize, dst: usize, len: u32, offset: u32): u32;

// --- TCP (lwip/tcp.h) ---
@external("native", "tcp_new") export declare function tcp_new(): usize;
@external("native", "tcp_listen_with_backlog") export declare function tcp_listen_with_backlog(pcb: usize, backlog: u32): usize;
@external("native", "tcp_write") export declare function tcp_write(pcb: usize, data: usize, len: u32, flags: u32): i32;
@external("native", "tcp_output") export declare function tcp_output(pcb: usize): i32;
@external("native", "tcp_recved") export declare function tcp_recved(pcb: usize, len: u32): void;
@external("native", "tcp_shutdown") export declare function tcp_shutdown(pcb: usize, rx: i32, tx: i32): i32;
@external("native", "tcp_close") export declare function tcp_close(pcb: usize): i32;
@external("native", "tcp_abort") export declare function tcp_abort(pcb: usize): void;

// --- UDP (lwip/udp.h) ---
@external("native", "udp_new") export declare function udp_new(): usize;
@external("native", "udp_remove") export declare function udp_remove(pcb: usize): void;

// --- the glue (lwip/glue.c, export names morgana_lwip_*) ---
@external("native", "morgana_lwip_netif_size") export declare function netif_size(): u32;
@external("native", "morgana_lwip_netif_add")
export declare function netif_add(netif: usize, mac: usize, mtu: u32, ip: u32, mask: u32, gw: u32): usize;
@external("native", "morgana_lwip_netif_ip4") export declare function netif_ip4(netif: usize): u32;
@external("native", "morgana_lwip_netif_mask4") export declare function netif_mask4(netif: usize): u32;
@external("native", "morgana_lwip_netif_gw4") export declare function netif_gw4(netif: usize): u32;
@external("native", "morgana_lwip_input") export declare function input(p: usize, netif: usize): i32;
@external("native", "morgana_lwip_pbuf_payload") export declare function pbuf_payload(p: usize): usize;
@external("native", "morgana_lwip_pbuf_len") export declare function pbuf_len(p: usize): u32;
@external("native", "morgana_lwip_pbuf_tot_len") export declare function pbuf_tot_len(p: usize): u32;
@external("native", "morgana_lwip_pbuf_next") export declare function pbuf_next(p: usize): usize;
@external("native", "morgana_lwip_tcp_arm") export declare function tcp_arm(pcb: usize, arg: u32): void;
@external("native", "morgana_lwip_tcp_arm_listen") export declare function tcp_arm_listen(pcb: usize, arg: u32): void;
@external("native", "morgana_lwip_tcp_disarm") export declare function tcp_disarm(pcb: usize): void;
@external("native", "morgana_lwip_tcp_bind4") export declare function tcp_bind4(pcb: usize, ip: u32, port: u32): i32;
@external("native", "morgana_lwip_tcp_connect4") export declare function tcp_connect4(pcb: usize, ip: u32, port: u32): i32;
@external("native", "morgana_lwip_tcp_sndbuf") export declare function tcp_sndbuf(pcb: usize): u32;
@external("native", "morgana_lwip_tcp_sndqueuelen") export declare function tcp_sndqueuelen(pcb: usize): u32;
@external("native", "morgana_lwip_tcp_nodelay") export declare function tcp_nodelay(pcb: usize, on: u32): void;
@external("native", "morgana_lwip_tcp_remote_ip4") export declare function tcp_remote_ip4(pcb: usize): u32;
@external("native", "morgana_lwip_tcp_remote_port") export declare function tcp_remote_port(pcb: usize): u32;
@external("native", "morgana_lwip_tcp_local_port") export declare function tcp_local_port(pcb: usize): u32;
@external("native", "morgana_lwip_udp_arm") export declare function udp_arm(pcb: usize, arg: u32): void;
@external("native", "morgana_lwip_udp_bind4") export declare function udp_bind4(pcb: usize, ip: u32, port: u32): i32;
@external("native", "morgana_lwip_udp_sendto4") export declare function udp_sendto4(pcb: usize, p: usize, ip: u32, port: u32): i32;
@external("native", "morgana_lwip_timeouts_sleeptime") export declare function timeouts_sleeptime(): u32;
@external("native", "morgana_lwip_dhcp_bound") export declare function dhcp_bound(netif: usize): u32;
@external("native", "morgana_lwip_pool_used") export declare function pool_used(which: u32): u32;

// --- constants (lwip/err.h, lwip/pbuf.h, lwip/tcp.h, lwip/lwipopts.h) ---

/** err_t values (lwip/err.h). */
export const ERR_OK: i32 = 0;
export const ERR_MEM: i32 = -1;
export const ERR_BUF: i32 = -2;
export const ERR_TIMEOUT: i32 = -3;
export const ERR_RTE: i32 = -4;
export const ERR_INPROGRESS: i32 = -5;
export const ERR_VAL: i32 = -6;
export const ERR_WOULDBLOCK: i32 = -7;
export const ERR_USE: i32 = -8;
export const ERR_ALREADY: i32 = -9;
export const ERR_ISCONN: i32 = -10;
export const ERR_CONN: i32 = -11;
export const ERR_IF: i32 = -12;
export const ERR_ABRT: i32 = -13;
export const ERR_RST: i32 = -14;
export const ERR_CLSD: i32 = -15;
export const ERR_ARG: i32 = -16;

/** pbuf_layer: no header room; room for Ethernet + IPv4 + TCP headers (PBUF_TRANSPORT = 14 + 20 + 20). */
export const PBUF_RAW: i32 = 0;
export const PBUF_TRANSPORT: i32 = 54;
/** pbuf_type: one contiguous pbuf from lwIP's heap; a chain of pool pbufs (received frames). */
export const PBUF_RAM: i32 = 0x0280;
export const PBUF_POOL: i32 = 0x0182;

/** tcp_write flags: copy the data into lwIP; more data follows (no PSH yet). */
export const TCP_WRITE_FLAG_COPY: u32 = 0x01;
export const TCP_WRITE_FLAG_MORE: u32 = 0x02;

/** lwipopts.h: segments queued per connection at most (TCP_SND_QUEUELEN = ceil(4 * TCP_SND_BUF / TCP_MSS)). */
export const TCP_SND_QUEUELEN: u32 = (4 * 65536 + 1460 - 1) / 1460;
/** sys_timeouts_sleeptime's "no timer set". */
export const SLEEPTIME_INFINITE: u32 = 0xffffffff;

/** morgana_lwip_pool_used's pools (lwip/glue.c). */
export const POOL_PBUF_POOL: u32 = 0;
export const POOL_TCP_PCB: u32 = 1;
export const POOL_TCP_PCB_LISTEN: u32 = 2;
export const POOL_UDP_PCB: u32 = 3;
export const POOL_TCP_SEG: u32 = 4;
export const POOL_PBUF: u32 = 5;

/** An err_t as words, for error messages ("out of memory"). */
export function errText(err: i32): string {
  switch (err) {
    case ERR_OK:
      return "no error";
    case ERR_MEM:
      return "out of memory in the TCP/IP stack";
    case ERR_BUF:
      return "buffer error";
    case ERR_TIMEOUT:
      return "timed out";
    case ERR_RTE:
      return "no route to the host";
    case ERR_INPROGRESS:
      return "operation in progress";
    case ERR_VAL:
      return "illegal value";
    case ERR_WOULDBLOCK:
      return "operation would block";
    case ERR_USE:
      return "address in use";
    case ERR_ALREADY:
      return "already connecting";
    case ERR_ISCONN:
      return "already connected";
    case ERR_CONN:
      return "not connected";
    case ERR_IF:
      return "interface error";
    case ERR_ABRT:
      return "connection aborted";
    case ERR_RST:
      return "connection reset";
    case ERR_CLSD:
      return "connection closed";
    case ERR_ARG:
      return "illegal argument";
  }
  return "lwIP error " + err.toString();
}
