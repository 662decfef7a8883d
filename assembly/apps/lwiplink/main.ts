// lwiplink: the smallest app linked with lwIP (app.json "native": ["lwip"]). It proves the
// native module links end to end, in the harness and through wasm2c + the shim: the app
// calls lwIP through module "native", and lwIP calls the app's morgana_lwip_* exports back
// (module "app"). It brings lwIP up (which reads the clock through morgana_lwip_now), adds
// an Ethernet interface with a static address (lwIP announces it with a gratuitous ARP) and
// sends one UDP broadcast; both reach morgana_lwip_linkoutput as Ethernet frames. The other callbacks are stubs: the network runtime
// implements them for real. Prints TEST PASS, or FAIL with what went wrong.
import { console, exit } from "../../runtime";

// lwIP's raw API and glue (lwip/glue.c); pointers are offsets in the shared memory.
@external("native", "lwip_init") declare function lwip_init(): void;
@external("native", "pbuf_alloc") declare function pbuf_alloc(layer: i32, length: i32, type: i32): usize;
@external("native", "pbuf_free") declare function pbuf_free(p: usize): i32;
@external("native", "morgana_lwip_pbuf_tot_len") declare function pbuf_tot_len(p: usize): u32;
@external("native", "morgana_lwip_pbuf_len") declare function pbuf_len(p: usize): u32;
@external("native", "morgana_lwip_pbuf_payload") declare function pbuf_payload(p: usize): usize;
@external("native", "morgana_lwip_netif_size") declare function netif_size(): u32;
@external("native", "morgana_lwip_netif_add")
declare function netif_add(netif: usize, mac: usize, mtu: u32, ip: u32, mask: u32, gw: u32): usize;
@external("native", "morgana_lwip_netif_ip4") declare function netif_ip4(netif: usize): u32;
@external("native", "netif_set_link_up") declare function netif_set_link_up(netif: usize): void;
@external("native", "netif_set_up") declare function netif_set_up(netif: usize): void;
@external("native", "udp_new") declare function udp_new(): usize;
@external("native", "udp_remove") declare function udp_remove(pcb: usize): void;
@external("native", "morgana_lwip_udp_sendto4") declare function udp_sendto4(pcb: usize, p: usize, ip: u32, port: u32): i32;

// lwIP's constants (lwip/pbuf.h, lwip/err.h; lwipopts.h has no Ethernet padding).
const PBUF_TRANSPORT: i32 = 14 + 20 + 8; // room for the Ethernet, IPv4 and UDP headers
const PBUF_RAM: i32 = 0x0280;
const ERR_OK: i32 = 0;

let clockReads = 0;
let statusChanges = 0;
let frames = 0;
let frameBytes: u32 = 0;
let frameBroadcast = false;
let frameType: u32 = 0;

// The callbacks lwIP imports (LWIP_IMPORTS in tools/lib/lwip.ts), with its signatures.
export function morgana_lwip_now(): u32 {
  clockReads++;
  return 0;
}
export function morgana_lwip_rand(): u32 {
  return 4; // a link test needs no entropy
}
export function morgana_lwip_linkoutput(netif: usize, p: usize): i32 {
  frames++;
  frameBytes = pbuf_tot_len(p);
  // The first pbuf holds the Ethernet header: a broadcast goes to ff:ff:ff:ff:ff:ff.
  const eth = pbuf_payload(p);
  frameBroadcast = pbuf_len(p) >= 14 && load<u32>(eth) == 0xffffffff && load<u16>(eth + 4) == 0xffff;
  frameType = pbuf_len(p) >= 14 ? (<u32>load<u8>(eth + 12) << 8) | load<u8>(eth + 13) : 0;
  return ERR_OK;
}
export function morgana_lwip_netif_status(netif: usize): void {
  statusChanges++;
}
export function morgana_lwip_tcp_accept(arg: u32, pcb: usize, err: i32): i32 {
  return ERR_OK;
}
export function morgana_lwip_tcp_connected(arg: u32, pcb: usize, err: i32): i32 {
  return ERR_OK;
}
export function morgana_lwip_tcp_recv(arg: u32, pcb: usize, p: usize, err: i32): i32 {
  if (p) pbuf_free(p);
  return ERR_OK;
}
export function morgana_lwip_tcp_sent(arg: u32, pcb: usize, len: u32): i32 {
  return ERR_OK;
}
export function morgana_lwip_tcp_err(arg: u32, err: i32): void {}
export function morgana_lwip_udp_recv(arg: u32, pcb: usize, p: usize, ip: u32, port: u32): void {
  pbuf_free(p);
}

function fail(what: string): void {
  console.log("FAIL " + what);
  exit(1);
}

/** An IPv4 address as lwIP holds it: the four bytes in network order in memory. */
function ip4(a: u32, b: u32, c: u32, d: u32): u32 {
  return a | (b << 8) | (c << 16) | (d << 24);
}

lwip_init();
if (clockReads == 0) fail("lwip_init never read the clock through morgana_lwip_now");

const netif = heap.alloc(<usize>netif_size());
memory.fill(netif, 0, <usize>netif_size());
const mac = heap.alloc(6);
for (let i = 0; i < 6; i++) store<u8>(mac + i, <u8>(0x02 + i)); // locally administered
const address = ip4(10, 0, 0, 2);
if (netif_add(netif, mac, 1500, address, ip4(255, 255, 255, 0), ip4(10, 0, 0, 1)) != netif) fail("netif_add refused the interface");
if (netif_ip4(netif) != address) fail("the interface's address reads back as " + netif_ip4(netif).toString(16));
netif_set_link_up(netif);
netif_set_up(netif); // announces the address: a gratuitous ARP through morgana_lwip_linkoutput
if (statusChanges == 0) fail("netif_set_up did not call morgana_lwip_netif_status");
if (frames != 1 || frameType != 0x0806 || !frameBroadcast) fail("netif_set_up sent no gratuitous ARP broadcast");

const pcb = udp_new();
if (!pcb) fail("udp_new: no pcb");
const text = "hello";
const p = pbuf_alloc(PBUF_TRANSPORT, text.length, PBUF_RAM);
if (!p) fail("pbuf_alloc: no pbuf");
String.UTF8.encodeUnsafe(changetype<usize>(text), text.length, pbuf_payload(p));
const rc = udp_sendto4(pcb, p, ip4(255, 255, 255, 255), 9);
pbuf_free(p); // udp_sendto leaves the pbuf to its caller
udp_remove(pcb);
if (rc != ERR_OK) fail("udp_sendto: error " + rc.toString());
if (frames != 2) fail("lwIP sent " + (frames - 1).toString() + " frames for one datagram through morgana_lwip_linkoutput");
if (frameType != 0x0800 || !frameBroadcast) fail("the datagram's frame is not an IPv4 Ethernet broadcast (type " + frameType.toString(16) + ")");
if (frameBytes != <u32>(PBUF_TRANSPORT + text.length)) fail("the datagram's frame is " + frameBytes.toString() + " bytes");
console.log("TEST PASS");
