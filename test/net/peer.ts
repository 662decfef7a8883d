// Host-side peers for the TCP/IP tests, on the far end of the harness netback's wire
// (tools/harness/netback.ts, a Peer):
//
//   LwipHost    a second lwIP 2.1.3 — the very build/native-lwip.wasm the guest links —
//               instantiated in Node as the host 10.0.0.1: TCP clients and servers, UDP,
//               ARP and ICMP, with its timers on the wire's clock (WirePort.after). An
//               independent TCP implementation would be better still; this one at least
//               runs its own state, and the wire between the two is Xen's.
//   DhcpServer  a scripted DHCP server (RFC 2131, options RFC 2132): DHCPDISCOVER is
//               answered with DHCPOFFER, DHCPREQUEST for the offered address with DHCPACK.
//
// lwIP's callbacks here only record (as in the guest: lwip/glue.c's contract); the host
// acts on what they recorded in pump(), after lwIP has returned.
import { readFileSync } from "node:fs";
import { LWIP_WASM } from "../../tools/lib/lwip.ts";
import type { Peer, WirePort } from "../../tools/harness/netback.ts";
import * as F from "./frames.ts";

export const HOST_IP = "10.0.0.1";
export const GUEST_IP = "10.0.0.2";
export const HOST_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x01);

/** lwIP's err_t values (lwip/err.h). */
export const ERR = { OK: 0, MEM: -1, RTE: -4, USE: -8, ABRT: -13, RST: -14, CLSD: -15 } as const;
const PBUF_RAW = 0;
const PBUF_TRANSPORT = 54;
const PBUF_RAM = 0x0280;
const PBUF_POOL = 0x0182;
const TCP_WRITE_FLAG_COPY = 1;
const STAGING = 65536;

type Exports = Record<string, any>;

/** One TCP connection of the host. Handlers run from pump(), never inside lwIP. */
export class HostConn {
  pcb = 0;
  connected = false;
  eof = false;
  /** lwIP's err_t from the err callback (the pcb is gone), if any. */
  err?: number;
  /** Bytes received in all; the data too when keep is set. */
  received = 0;
  chunks: Uint8Array[] = [];
  keep = false;
  onConnect?: () => void;
  onData?: (d: Uint8Array) => void;
  onEof?: () => void;
  onError?: (err: number) => void;
  /** Bytes written into lwIP so far. */
  written = 0;
  private out: Uint8Array[] = [];
  private outOff = 0;
  private wantShutdown = false;
  private shut = false;
  private wantClose = false;
  closed = false;

  constructor(
    readonly host: LwipHost,
    readonly id: number,
  ) {}

  /** Queues data; it goes into lwIP's send buffer as room appears. */
  write(d: Uint8Array): void {
    if (d.length) this.out.push(d);
    this.host.kick();
  }

  /** Bytes queued here and not yet in lwIP. */
  get queued(): number {
    return this.out.reduce((n, d) => n + d.length, 0) - this.outOff;
  }

  /** A FIN once the queued data is in lwIP. */
  shutdown(): void {
    this.wantShutdown = true;
    this.host.kick();
  }

  /** tcp_close once the queued data is in lwIP (the pcb is lwIP's from then on). */
  close(): void {
    this.wantClose = true;
    this.host.kick();
  }

  /** A reset, at once. */
  abort(): void {
    if (this.pcb) {
      const ex = this.host.ex;
      ex.morgana_lwip_tcp_disarm(this.pcb);
      ex.tcp_abort(this.pcb);
      this.pcb = 0;
    }
    this.closed = true;
    this.host.conns.delete(this.id);
    this.host.kick();
  }

  /** Moves queued data into lwIP; true if anything changed. */
  flush(): boolean {
    const ex = this.host.ex;
    if (!this.pcb || !this.connected) return false;
    let progress = false;
    let wrote = false;
    while (this.out.length) {
      const d = this.out[0];
      const room = ex.morgana_lwip_tcp_sndbuf(this.pcb) >>> 0;
      const n = Math.min(room, 0xffff, STAGING, d.length - this.outOff);
      if (n <= 0) break;
      this.host.mem().set(d.subarray(this.outOff, this.outOff + n), this.host.staging);
      const e = ex.tcp_write(this.pcb, this.host.staging, n, TCP_WRITE_FLAG_COPY);
      if (e !== ERR.OK) break; // ERR_MEM: again after tcp_sent
      this.written += n;
      this.outOff += n;
      wrote = true;
      if (this.outOff === d.length) {
        this.out.shift();
        this.outOff = 0;
      }
    }
    if (wrote) {
      ex.tcp_output(this.pcb);
      progress = true;
    }
    if (this.out.length === 0 && this.wantShutdown && !this.shut) {
      if (ex.tcp_shutdown(this.pcb, 0, 1) === ERR.OK) this.shut = true;
      progress = true;
    }
    if (this.out.length === 0 && this.wantClose && this.pcb) {
      ex.morgana_lwip_tcp_disarm(this.pcb);
      if (ex.tcp_close(this.pcb) !== ERR.OK) ex.tcp_abort(this.pcb);
      this.pcb = 0;
      this.closed = true;
      this.host.conns.delete(this.id);
      progress = true;
    }
    return progress;
  }
}

/** A UDP socket of the host. */
export class HostUdp {
  onDatagram?: (data: Uint8Array, from: string, port: number) => void;
  constructor(
    readonly host: LwipHost,
    readonly pcb: number,
  ) {}
  sendTo(ip: string, port: number, data: Uint8Array): number {
    const ex = this.host.ex;
    const p = ex.pbuf_alloc(PBUF_TRANSPORT, data.length, PBUF_RAM);
    if (!p) return ERR.MEM;
    this.host.mem().set(data, ex.morgana_lwip_pbuf_payload(p));
    const e = ex.morgana_lwip_udp_sendto4(this.pcb, p, F.ip4u32(ip), port);
    ex.pbuf_free(p);
    this.host.kick();
    return e;
  }
}

export interface HostOptions {
  ip?: string;
  mask?: string;
  mac?: Uint8Array;
  /** Frames taken before lwIP sees them (a DHCP server, a dropped SYN): return true to consume. */
  intercept?: (frame: Uint8Array, port: WirePort) => boolean;
}

/** The host at the other end of the wire: a second lwIP in Node (see the header). */
export class LwipHost implements Peer {
  ex: Exports;
  port?: WirePort;
  netif = 0;
  staging = 0;
  readonly conns = new Map<number, HostConn>();
  private listeners = new Map<number, (c: HostConn) => void>();
  private udps = new Map<number, HostUdp>();
  /** What lwIP's callbacks recorded, run by pump() once lwIP returns. */
  private events: (() => void)[] = [];
  private nextId = 1;
  private tickAt?: number;
  private inPump = false;
  /** Set while a frame of ours is on its way out (inside lwIP): frames arriving then wait in deferred. */
  private sending = false;
  private deferred: Uint8Array[] = [];
  /** Frames the host sent and received. */
  txFrames = 0;
  rxFrames = 0;
  readonly ip: string;

  constructor(readonly opts: HostOptions = {}) {
    this.ip = opts.ip ?? HOST_IP;
    const mod = new WebAssembly.Module(readFileSync(LWIP_WASM));
    const self = this;
    const app = {
      morgana_lwip_now: () => Math.floor(self.port ? self.port.now() : 0) >>> 0,
      morgana_lwip_rand: () => (Math.random() * 2 ** 32) >>> 0,
      morgana_lwip_linkoutput: (_n: number, p: number) => self.linkoutput(p),
      morgana_lwip_netif_status: () => {},
      morgana_lwip_tcp_accept: (arg: number, pcb: number, err: number) => self.accepted(arg, pcb, err),
      morgana_lwip_tcp_connected: (arg: number) => {
        const c = self.conns.get(arg);
        if (c) {
          c.connected = true;
          self.events.push(() => c.onConnect?.());
        }
        return ERR.OK;
      },
      morgana_lwip_tcp_recv: (arg: number, _pcb: number, p: number) => {
        const c = self.conns.get(arg);
        if (!p) {
          if (c) self.events.push(() => self.eof(c));
          return ERR.OK;
        }
        self.events.push(() => self.recv(c, p));
        return ERR.OK;
      },
      morgana_lwip_tcp_sent: () => ERR.OK,
      morgana_lwip_tcp_err: (arg: number, err: number) => {
        const c = self.conns.get(arg);
        if (!c) return;
        c.pcb = 0;
        c.err = err;
        self.conns.delete(arg);
        self.events.push(() => c.onError?.(err));
      },
      morgana_lwip_udp_recv: (arg: number, _pcb: number, p: number, ip: number, port: number) => {
        self.events.push(() => self.datagram(arg, p, ip, port));
      },
    };
    this.ex = new WebAssembly.Instance(mod, { app }).exports as Exports;
    this.ex.lwip_init();
    const heap = (this.ex.__heap_base as WebAssembly.Global).value as number;
    const need = heap + 1024 + STAGING + 16;
    const memory = this.ex.memory as WebAssembly.Memory;
    if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
    this.netif = (heap + 15) & ~15;
    this.staging = this.netif + 1024;
  }

  mem(): Uint8Array {
    return new Uint8Array((this.ex.memory as WebAssembly.Memory).buffer);
  }

  /** The vif connected: the interface comes up (a gratuitous ARP goes out). */
  start(port: WirePort): void {
    this.port = port;
    const mac = this.netif + 512;
    this.mem().set(this.opts.mac ?? HOST_MAC, mac);
    const n = this.ex.morgana_lwip_netif_add(this.netif, mac, 1500, F.ip4u32(this.ip), F.ip4u32(this.opts.mask ?? "255.255.255.0"), 0);
    if (n !== this.netif) throw new Error("the host's lwIP refused its interface");
    this.ex.netif_set_link_up(this.netif);
    this.ex.netif_set_up(this.netif);
    this.pump();
  }

  receive(frame: Uint8Array, port: WirePort): void {
    this.port = port;
    if (this.opts.intercept?.(frame, port)) return;
    if (!this.netif) return;
    if (this.sending) {
      // The wire delivered a frame from inside our own port.send (a wire that answers at
      // once; netback's reorder fault no longer does, it holds one frame per direction):
      // lwIP is mid-call and not reentrant, so it waits for pump().
      this.deferred.push(frame);
      return;
    }
    this.input(frame);
    this.pump();
  }

  private input(frame: Uint8Array): void {
    this.rxFrames++;
    const p = this.ex.pbuf_alloc(PBUF_RAW, frame.length, PBUF_POOL);
    if (!p) return; // out of pool pbufs: dropped, as lwIP's own driver would
    this.ex.pbuf_take(p, this.stage(frame), frame.length);
    this.ex.morgana_lwip_input(p, this.netif);
  }

  // Copies bytes into the staging area (pbuf_take copies across a chain from there).
  private stage(d: Uint8Array): number {
    if (d.length > STAGING) throw new Error(`a frame of ${d.length} bytes`);
    this.mem().set(d, this.staging);
    return this.staging;
  }

  private linkoutput(p: number): number {
    const len = this.ex.morgana_lwip_pbuf_tot_len(p);
    const at = this.staging; // free here: callers of linkoutput do not use it
    this.ex.pbuf_copy_partial(p, at, len, 0);
    const f = this.mem().slice(at, at + len);
    this.txFrames++;
    this.sending = true;
    try {
      this.port?.send(f);
    } finally {
      this.sending = false;
    }
    return ERR.OK;
  }

  /** Connects to ip:port; handlers may be set on the result before pump() runs them. */
  connect(ip: string, port: number): HostConn {
    const c = new HostConn(this, this.nextId++);
    const pcb = this.ex.tcp_new();
    if (!pcb) throw new Error("the host's lwIP has no free pcb");
    c.pcb = pcb;
    this.conns.set(c.id, c);
    this.ex.morgana_lwip_tcp_arm(pcb, c.id);
    const e = this.ex.morgana_lwip_tcp_connect4(pcb, F.ip4u32(ip), port);
    if (e !== ERR.OK) throw new Error(`the host's tcp_connect: error ${e}`);
    this.kick();
    return c;
  }

  /** Listens on port; onAccept runs (from pump) for each connection. */
  listen(port: number, onAccept: (c: HostConn) => void): void {
    const pcb = this.ex.tcp_new();
    if (this.ex.morgana_lwip_tcp_bind4(pcb, 0, port) !== ERR.OK) throw new Error(`the host cannot bind port ${port}`);
    const l = this.ex.tcp_listen_with_backlog(pcb, 16);
    if (!l) throw new Error("the host cannot listen");
    const id = this.nextId++;
    this.listeners.set(id, onAccept);
    this.ex.morgana_lwip_tcp_arm_listen(l, id);
  }

  udp(port: number): HostUdp {
    const pcb = this.ex.udp_new();
    if (this.ex.morgana_lwip_udp_bind4(pcb, 0, port) !== ERR.OK) throw new Error(`the host cannot bind UDP port ${port}`);
    const id = this.nextId++;
    const u = new HostUdp(this, pcb);
    this.udps.set(id, u);
    this.ex.morgana_lwip_udp_arm(pcb, id);
    return u;
  }

  /** Elements in use in one of the host lwIP's pools (lwip/glue.c pool_used). */
  poolUsed(which: number): number {
    return this.ex.morgana_lwip_pool_used(which) >>> 0;
  }

  private accepted(arg: number, pcb: number, err: number): number {
    const on = this.listeners.get(arg);
    if (!on || err !== ERR.OK || !pcb) return ERR.MEM;
    const c = new HostConn(this, this.nextId++);
    c.pcb = pcb;
    c.connected = true;
    this.conns.set(c.id, c);
    this.ex.morgana_lwip_tcp_arm(pcb, c.id); // allowed in the accept callback (glue.c)
    this.events.push(() => on(c));
    return ERR.OK;
  }

  private recv(c: HostConn | undefined, p: number): void {
    const ex = this.ex;
    const len = ex.morgana_lwip_pbuf_tot_len(p);
    const at = this.staging;
    ex.pbuf_copy_partial(p, at, len, 0);
    const d = this.mem().slice(at, at + len);
    if (c && c.pcb) ex.tcp_recved(c.pcb, len);
    ex.pbuf_free(p);
    if (!c) return;
    c.received += len;
    if (c.keep) c.chunks.push(d);
    c.onData?.(d);
  }

  private eof(c: HostConn): void {
    c.eof = true;
    c.onEof?.();
  }

  private datagram(arg: number, p: number, ip: number, port: number): void {
    const ex = this.ex;
    const len = ex.morgana_lwip_pbuf_tot_len(p);
    const at = this.staging;
    ex.pbuf_copy_partial(p, at, len, 0);
    const d = this.mem().slice(at, at + len);
    ex.pbuf_free(p);
    const from = [ip & 0xff, (ip >>> 8) & 0xff, (ip >>> 16) & 0xff, ip >>> 24].join(".");
    this.udps.get(arg)?.onDatagram?.(d, from, port);
  }

  /** Runs pump() unless it is running (it then finds the work itself). */
  kick(): void {
    if (!this.inPump) this.pump();
  }

  /** Runs what the callbacks recorded, moves queued data into lwIP, re-arms the timer. */
  pump(): void {
    if (this.inPump) return;
    this.inPump = true;
    try {
      for (let round = 0; round < 10_000; round++) {
        let progress = false;
        while (this.deferred.length) {
          this.input(this.deferred.shift()!);
          progress = true;
        }
        while (this.events.length) {
          this.events.shift()!();
          progress = true;
        }
        for (const c of [...this.conns.values()]) if (c.flush()) progress = true;
        if (!progress) break;
      }
    } finally {
      this.inPump = false;
    }
    this.arm();
  }

  // One timed event at lwIP's next timeout.
  private arm(): void {
    const port = this.port;
    if (!port) return;
    const ms = this.ex.morgana_lwip_timeouts_sleeptime() >>> 0;
    if (ms === 0xffffffff) return;
    const at = port.now() + Math.max(ms, 1);
    if (this.tickAt !== undefined && this.tickAt <= at) return;
    this.tickAt = at;
    port.after(Math.max(ms, 1), () => {
      if (this.tickAt !== at) return; // a sooner one replaced it
      this.tickAt = undefined;
      this.ex.sys_check_timeouts();
      this.pump();
    });
  }
}

// ---- DHCP ----

const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, ACK: 5, NAK: 6 } as const;
const MAGIC = Uint8Array.of(99, 130, 83, 99);

/** A DHCP message's options (RFC 2132): code → bytes. */
export function dhcpOptions(msg: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  if (msg.length < 240 || !MAGIC.every((b, i) => msg[236 + i] === b)) return out;
  for (let i = 240; i < msg.length;) {
    const code = msg[i];
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = msg[i + 1];
    out.set(code, msg.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

export interface DhcpOptions {
  server?: string;
  offer?: string;
  mask?: string;
  router?: string;
  leaseSeconds?: number;
  serverMac?: Uint8Array;
}

/** A scripted DHCP server on the wire (see the header). Use handle() as an LwipHost intercept, or alone. */
export class DhcpServer {
  discovers = 0;
  offers = 0;
  requests = 0;
  acks = 0;
  /** The client's MAC, from chaddr. */
  clientMac?: Uint8Array;
  readonly server: string;
  readonly offer: string;
  constructor(readonly o: DhcpOptions = {}) {
    this.server = o.server ?? HOST_IP;
    this.offer = o.offer ?? GUEST_IP;
  }

  /** Answers a DHCP request in frame (true), or leaves the frame alone (false). */
  handle(frame: Uint8Array, port: WirePort): boolean {
    const e = F.parseEthernet(frame);
    if (e.type !== F.ETH_IP) return false;
    const ip = F.parseIpv4(e.payload);
    if (ip.proto !== F.IP_UDP) return false;
    const u = F.parseUdp(ip);
    if (u.dport !== 67) return false;
    const m = u.data;
    if (m[0] !== 1) return true; // not a BOOTREQUEST: ignored
    const opts = dhcpOptions(m);
    const type = opts.get(53)?.[0];
    this.clientMac = m.slice(28, 34);
    let reply: number;
    if (type === DHCP.DISCOVER) {
      this.discovers++;
      reply = DHCP.OFFER;
      this.offers++;
    } else if (type === DHCP.REQUEST) {
      this.requests++;
      const wanted = opts.get(50) ?? m.subarray(12, 16); // requested address, or ciaddr when renewing
      reply = Array.from(wanted).join(".") === this.offer ? DHCP.ACK : DHCP.NAK;
      if (reply === DHCP.ACK) this.acks++;
    } else return true;
    port.send(this.message(m, reply));
    return true;
  }

  private message(req: Uint8Array, type: number): Uint8Array {
    const b = new Uint8Array(300);
    b[0] = 2; // BOOTREPLY
    b[1] = 1; // Ethernet
    b[2] = 6;
    b.set(req.subarray(4, 8), 4); // xid
    b.set(req.subarray(10, 12), 10); // flags
    if (type !== DHCP.NAK) b.set(F.ip4(this.offer), 16); // yiaddr
    b.set(F.ip4(this.server), 20); // siaddr
    b.set(req.subarray(28, 44), 28); // chaddr
    b.set(MAGIC, 236);
    const lease = this.o.leaseSeconds ?? 3600;
    // prettier-ignore
    const opts = [
      53, 1, type,
      54, 4, ...F.ip4(this.server),
      51, 4, (lease >>> 24) & 0xff, (lease >>> 16) & 0xff, (lease >>> 8) & 0xff, lease & 0xff,
      1, 4, ...F.ip4(this.o.mask ?? "255.255.255.0"),
      3, 4, ...F.ip4(this.o.router ?? this.server),
      255,
    ];
    b.set(opts, 240);
    const udp = F.udp(this.server, "255.255.255.255", 67, 68, b);
    return F.ethernet(F.BROADCAST, this.o.serverMac ?? HOST_MAC, F.ETH_IP, F.ipv4(this.server, "255.255.255.255", F.IP_UDP, udp));
  }
}
