// The app's side of the lwIP module's imports (lwip/glue.c, module "app"): an app that
// uses the network (app.json "native": ["lwip"]) re-exports this file, so these become
// its wasm exports:
//
//   export * from "../../runtime/tcpip/exports";
//
// They run inside lwIP calls the stack task makes (stack.ts) and only record: each
// forwards to the endpoint registered under `arg`, which marks itself dirty for the stack
// task. Pointers are offsets in the shared memory; err_t results are lwIP's (lwip.ts).
import * as L from "./lwip";
import { currentStack, nowMs, rand32 } from "./stack";

export function morgana_lwip_now(): u32 {
  return nowMs();
}

export function morgana_lwip_rand(): u32 {
  return rand32();
}

export function morgana_lwip_linkoutput(netif: usize, p: usize): i32 {
  const s = currentStack();
  return s ? s.onLinkOutput(p) : L.ERR_IF;
}

export function morgana_lwip_netif_status(netif: usize): void {
  const s = currentStack();
  if (s) s.onStatus();
}

export function morgana_lwip_tcp_accept(arg: u32, pcb: usize, err: i32): i32 {
  const s = currentStack();
  const e = s ? s.lookup(arg) : null;
  return e ? e.onAccept(pcb, err) : L.ERR_MEM; // an unknown listener: lwIP aborts the connection
}

export function morgana_lwip_tcp_connected(arg: u32, pcb: usize, err: i32): i32 {
  const s = currentStack();
  const e = s ? s.lookup(arg) : null;
  return e ? e.onConnected(pcb, err) : L.ERR_OK;
}

export function morgana_lwip_tcp_recv(arg: u32, pcb: usize, p: usize, err: i32): i32 {
  const s = currentStack();
  if (!s) return L.ERR_MEM; // never: lwIP runs only under the stack
  const e = s.lookup(arg);
  if (e) return e.onRecv(p);
  if (p) s.orphan(p); // freed by the stack task
  return L.ERR_OK;
}

export function morgana_lwip_tcp_sent(arg: u32, pcb: usize, len: u32): i32 {
  const s = currentStack();
  const e = s ? s.lookup(arg) : null;
  return e ? e.onSent(len) : L.ERR_OK;
}

export function morgana_lwip_tcp_err(arg: u32, err: i32): void {
  const s = currentStack();
  const e = s ? s.lookup(arg) : null;
  if (e) e.onErr(err);
}

export function morgana_lwip_udp_recv(arg: u32, pcb: usize, p: usize, ip: u32, port: u32): void {
  const s = currentStack();
  if (!s) return;
  const e = s.lookup(arg);
  if (e) e.onUdp(p, ip, port);
  else s.orphan(p);
}
