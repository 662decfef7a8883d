// tcptest: the TCP/IP API's client side and its errors, against the harness's host peer
// (test/net/tcpip.test.ts) or dom0. The address comes from the command line (ip=10.0.0.2/24)
// or DHCP; then one case, chosen by the first other word:
//
//   refused <ip> <port>         connect to a closed port: the error, "connection refused"
//   timeout <ip> <port> <ms>    connect where nothing answers: the error after ms
//   inuse <port>                listen on a port twice: "address in use"
//   reset <ip> <port>           connect, write, read until the peer resets the connection
//   client <ip> <port> <n>      n connections one after the other: write 100 bytes, read
//                               them back until the peer closes, close; then the stack's
//                               flows, pbufs, endpoints and lwIP's pools are back where
//                               they started
//   backlog <port> <n>          listen with a backlog of 2 and accept nothing for 1 s while
//                               the peer opens n connections: n - 2 are refused (reset),
//                               then the 2 are accepted, closed, and nothing is held
//   udpqueue <port> <n>         bind with a queue of 4 and receive nothing for 1 s while the
//                               peer sends n datagrams: n - 4 dropped and counted, 4 received
//
// Prints each error it meets as "tcptest: <error>", then one result line.
import { boot, console, sched, tcpip, time } from "../../runtime";
import { check, eq, result } from "../../runtime/testing";
export * from "../../runtime/tcpip/exports";

const words = new Array<string>();
const all = boot.args();
for (let i = 0; i < all.length; i++) if (all[i].indexOf("=") < 0) words.push(all[i]);
const mode = words.length > 0 ? words[0] : "";
const word = (i: i32): string => (words.length > i ? words[i] : "");
const num = (i: i32): i32 => (words.length > i ? <i32>I64.parseInt(words[i]) : 0);

function expectError(f: sched.Future, ending: string, what: string): void {
  if (f.ok) return check(false, what + ": succeeded");
  console.log("tcptest: " + f.error);
  check(f.error.endsWith(ending), what + ": the error ends with \"" + ending + "\"");
}

function refused(): void {
  const c = sched.wait(tcpip.tcp.connect(word(1), num(2)));
  expectError(c, "connection refused", "connect to a closed port");
}

function timedOut(): void {
  const c = sched.wait(tcpip.tcp.connect(word(1), num(2), <i64>num(3) * time.NS_PER_MS));
  expectError(c, "no answer to the connection request in " + (num(3) / 1000).toString() + " s", "connect where nothing answers");
}

function inuse(): void {
  const a = sched.wait(tcpip.tcp.listen(num(1)));
  check(a.ok, "the first listen: " + (a.ok ? "ok" : a.error));
  const b = sched.wait(tcpip.tcp.listen(num(1)));
  expectError(b, "address in use", "a second listen on the same port");
  if (a.ok) sched.wait(a.listener!.close());
  const c = sched.wait(tcpip.tcp.listen(num(1)));
  check(c.ok, "listen again after close: " + (c.ok ? "ok" : c.error));
}

function reset(): void {
  const c = sched.wait(tcpip.tcp.connect(word(1), num(2)));
  if (!c.ok) return check(false, "connect: " + c.error);
  const f = c.flow!;
  const w = sched.wait(f.write(Uint8Array.wrap(String.UTF8.encode("reset me"))));
  check(w.ok, "write: " + (w.ok ? "ok" : w.error));
  for (let i = 0; i < 100; i++) {
    const r = sched.waitFor(f.read(), 10 * time.NS_PER_S);
    if (r.ok && r.data!.length > 0) continue;
    if (r.ok) return check(false, "the peer closed instead of resetting");
    expectError(r, "connection reset by peer", "read from a connection the peer resets");
    break;
  }
  const cl = sched.wait(f.close());
  check(cl.ok, "close after the reset");
  eq(tcpip.stats().flows.toString(), "0", "no flow left");
}

function client(): void {
  const n = num(3);
  const s0 = tcpip.stats();
  const flows = s0.flows;
  const pbufs = s0.pbufsHeld;
  const endpoints = s0.endpoints;
  const pcbs = tcpip.poolUsed(tcpip.POOL_TCP_PCB);
  const pool = tcpip.poolUsed(tcpip.POOL_PBUF_POOL);
  let bad = 0;
  const msg = new Uint8Array(100);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < msg.length; k++) msg[k] = <u8>(i + k);
    const c = sched.waitFor(tcpip.tcp.connect(word(1), num(2)), 10 * time.NS_PER_S);
    if (!c.ok) {
      console.log("tcptest: connection " + i.toString() + ": " + c.error);
      bad++;
      continue;
    }
    const f = c.flow!;
    sched.wait(f.write(msg));
    let got = 0;
    let same = true;
    for (;;) {
      const r = sched.waitFor(f.read(), 10 * time.NS_PER_S);
      if (!r.ok) {
        console.log("tcptest: connection " + i.toString() + ": " + r.error);
        same = false;
        break;
      }
      const d = r.data!;
      if (d.length == 0) break;
      for (let k = 0; k < d.length && got + k < msg.length; k++) if (d[k] != msg[got + k]) same = false;
      got += d.length;
    }
    sched.wait(f.close());
    if (!same || got != msg.length) bad++;
  }
  check(bad == 0, n.toString() + " connections echoed 100 bytes each and closed (" + bad.toString() + " bad)");
  // The peer's ACK of the last FIN may still be on its way: lwIP frees that pcb when it comes.
  for (let i = 0; i < 100 && tcpip.poolUsed(tcpip.POOL_TCP_PCB) != pcbs; i++) sched.wait(sched.sleep(20 * time.NS_PER_MS));
  const s = tcpip.stats();
  eq(s.flows.toString(), flows.toString(), "flows back to their count");
  eq(s.pbufsHeld.toString(), pbufs.toString(), "pbufs held back to their count");
  eq(s.endpoints.toString(), endpoints.toString(), "endpoints back to their count");
  eq(tcpip.poolUsed(tcpip.POOL_TCP_PCB).toString(), pcbs.toString(), "lwIP's TCP pcbs back to their count");
  eq(tcpip.poolUsed(tcpip.POOL_PBUF_POOL).toString(), pool.toString(), "lwIP's pool pbufs back to their count");
  console.log("tcptest: " + n.toString() + " connections; flows " + s.flows.toString() + ", pbufs " + s.pbufsHeld.toString() +
    ", tcp pcbs " + tcpip.poolUsed(tcpip.POOL_TCP_PCB).toString() + ", tcp segments " + tcpip.poolUsed(tcpip.POOL_TCP_SEG).toString());
}

function backlog(): void {
  const l = sched.wait(tcpip.tcp.listen(num(1), 2));
  if (!l.ok) return check(false, "listen: " + l.error);
  const listener = l.listener!;
  console.log("tcptest: listening"); // the peer starts here
  sched.wait(sched.sleep(time.NS_PER_S));
  const n = num(2);
  eq(tcpip.stats().acceptRefused.toString(), (n - 2).toString(), "connections refused beyond the backlog");
  eq(listener.pending().toString(), "2", "connections waiting for accept()");
  for (let i = 0; i < 2; i++) {
    const a = sched.wait(listener.accept());
    if (!a.ok) return check(false, "accept: " + a.error);
    sched.wait(a.flow!.close());
  }
  sched.wait(listener.close());
  const s = tcpip.stats();
  eq(s.flows.toString() + " " + s.listeners.toString() + " " + s.endpoints.toString(), "0 0 0", "no flow, listener or endpoint left");
}

function udpqueue(): void {
  const b = sched.wait(tcpip.udp.bind(num(1)));
  if (!b.ok) return check(false, "bind: " + b.error);
  const sock = b.socket!;
  sock.queueMax = 4;
  console.log("tcptest: listening"); // the peer starts here
  sched.wait(sched.sleep(time.NS_PER_S));
  const n = num(2);
  eq(sock.dropped.toString(), (n - 4).toString(), "datagrams dropped beyond the queue");
  eq(sock.pending().toString(), "4", "datagrams queued");
  let order = true;
  for (let i = 0; i < 4; i++) {
    const r = sched.wait(sock.recv());
    if (!r.ok || r.datagram!.data.length != 1 || r.datagram!.data[0] != <u8>i) order = false;
  }
  check(order, "the first 4 datagrams received, in order");
  sched.wait(sock.close());
  eq(tcpip.stats().pbufsHeld.toString(), "0", "no pbuf held");
}

const up = sched.wait(tcpip.up());
if (!up.ok) check(false, "up: " + up.error);
else if (mode == "refused") refused();
else if (mode == "timeout") timedOut();
else if (mode == "inuse") inuse();
else if (mode == "reset") reset();
else if (mode == "client") client();
else if (mode == "backlog") backlog();
else if (mode == "udpqueue") udpqueue();
else check(false, "no case \"" + mode + "\" (refused, timeout, inuse, reset, client, backlog, udpqueue)");
result();
