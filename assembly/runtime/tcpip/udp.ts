// UDP over lwIP: a bound socket receives datagrams into a bounded queue (overflow dropped
// and counted) and sends to any address. As in tcp.ts, methods record and mark the socket
// dirty; service() makes the lwIP calls in the stack task; onUdp only records.
import { Future, State } from "../sched";
import * as L from "./lwip";
import * as addr from "./addr";
import { Endpoint, Stack, currentStack, stack } from "./stack";

/** Datagrams a socket keeps while nobody calls recv(); more are dropped (Socket.dropped). */
export const QUEUE_MAX: i32 = 64;
/** The largest UDP payload over IPv4 (65535 - 20 - 8). */
export const MAX_DATAGRAM: i32 = 65507;

/** A received datagram. */
export class Datagram {
  constructor(
    public data: Uint8Array,
    /** The sender's address (addr.ts) and port. */
    public from: u32,
    public port: u32,
  ) {}
  /** "10.0.0.1:5555". */
  get sender(): string {
    return addr.endpoint(this.from, this.port);
  }
}

/** recv()'s result: `datagram` once resolved. */
export class RecvOp extends Future {
  datagram: Datagram | null = null;
  constructor(public socket: Socket) {
    super();
  }
  protected onCancel(): void {
    this.socket.forget(this);
  }
}

/** bind()'s result: `socket` once resolved. */
export class BindOp extends Future {
  socket: Socket | null = null;
}

/** A datagram waiting to be sent. */
class SendOp extends Future {
  constructor(
    public to: u32,
    public toPort: u32,
    public data: Uint8Array,
  ) {
    super();
  }
}

export class Socket extends Endpoint {
  pcb: usize = 0;
  /** "udp port 7", the start of every error. */
  name: string;
  closed: bool = false;
  queueMax: i32 = QUEUE_MAX;
  /** Datagrams dropped because the queue was full; received and sent in all. */
  dropped: u64 = 0;
  received: u64 = 0;
  sent: u64 = 0;
  private arrived: Array<usize> = new Array<usize>();
  private arrivedFrom: Array<u32> = new Array<u32>();
  private queue: Array<Datagram> = new Array<Datagram>();
  private waits: Array<RecvOp> = new Array<RecvOp>();
  private sends: Array<SendOp> = new Array<SendOp>();
  private closeOp: Future | null = null;

  constructor(
    public port: u32,
    public bindOp: BindOp | null,
  ) {
    super();
    this.name = "udp port " + port.toString();
  }

  /** The next datagram (at once if one waits). */
  recv(): RecvOp {
    const r = new RecvOp(this);
    if (this.queue.length > 0 && this.waits.length == 0) {
      r.datagram = this.queue.shift();
      r.resolve();
    } else if (this.closed) r.reject(this.name + ": closed");
    else this.waits.push(r);
    return r;
  }

  /** Datagrams received and not yet taken. */
  pending(): i32 {
    return this.queue.length;
  }

  /** Sends data (up to 65507 bytes) to address:port; resolves once lwIP has sent it (or queued it for ARP). */
  sendTo(address: string, port: i32, data: Uint8Array): Future {
    const a = addr.parse(address);
    if (a < 0) return this.refused(address + ":" + port.toString() + ": not an IPv4 address");
    return this.sendTo4(<u32>a, port, data);
  }

  /** sendTo() with the address as a u32 (Datagram.from, addr.ip4()). */
  sendTo4(address: u32, port: i32, data: Uint8Array): Future {
    const to = addr.endpoint(address, <u32>port);
    if (this.closed) return this.refused("send to " + to + " after close");
    if (port < 1 || port > 65535) return this.refused(to + ": not a port (1 to 65535)");
    if (data.length > MAX_DATAGRAM)
      return this.refused("a datagram of " + data.length.toString() + " bytes to " + to + " is larger than UDP over IPv4 allows (" + MAX_DATAGRAM.toString() + ")");
    const op = new SendOp(address, <u32>port, data);
    this.sends.push(op);
    stack().markDirty(this);
    return op;
  }

  /** Stops receiving and releases the port; pending receives reject. */
  close(): Future {
    const f = this.closeOp;
    if (f) return f;
    const g = new Future();
    this.closeOp = g;
    this.closed = true;
    stack().markDirty(this);
    return g;
  }

  forget(r: RecvOp): void {
    const i = this.waits.indexOf(r);
    if (i >= 0) this.waits.splice(i, 1);
  }

  private refused(why: string): Future {
    const f = new Future();
    f.reject(this.name + ": " + why);
    return f;
  }

  onUdp(p: usize, ip: u32, port: u32): void {
    const s = stack();
    s.stats.pbufsHeld++;
    this.arrived.push(p); // ours now; the stack task copies and frees it
    this.arrivedFrom.push(ip);
    this.arrivedFrom.push(port);
    s.markDirty(this);
  }

  // ---- the stack task ----

  service(): void {
    const s = stack();
    const b = this.bindOp;
    if (b && b.pending && this.pcb == 0 && !this.closed) this.open(s, b);
    this.drain(s);
    this.send(s);
    if (this.closed) this.doClose(s);
  }

  private open(s: Stack, op: BindOp): void {
    const pcb = L.udp_new();
    if (pcb == 0) return this.refuse(s, op, "no free UDP socket (lwIP's MEMP_NUM_UDP_PCB)");
    const e = L.udp_bind4(pcb, 0, this.port);
    if (e != L.ERR_OK) {
      L.udp_remove(pcb);
      return this.refuse(s, op, L.errText(e));
    }
    L.udp_arm(pcb, this.arg);
    this.pcb = pcb;
    s.stats.udpSockets++;
    op.socket = this;
    op.resolve();
  }

  private refuse(s: Stack, op: BindOp, why: string): void {
    s.unregister(this);
    this.closed = true;
    op.reject("udp bind on port " + this.port.toString() + ": " + why);
  }

  // Copies received datagrams out of their pbufs (freed) to waiting receivers or the queue.
  private drain(s: Stack): void {
    const a = this.arrived;
    for (let i = 0; i < a.length; i++) {
      const p = unchecked(a[i]);
      this.received++;
      let r: RecvOp | null = null;
      while (this.waits.length > 0 && !r) {
        const w = this.waits.shift();
        if (w.state == State.Pending) r = w;
      }
      if (!r && (this.closed || this.queue.length >= this.queueMax)) {
        this.dropped++;
        s.stats.udpDropped++;
        s.freePbuf(p);
        continue;
      }
      const len = <i32>L.pbuf_tot_len(p);
      const d = new Uint8Array(len);
      if (len > 0) L.pbuf_copy_partial(p, d.dataStart, <u32>len, 0);
      s.freePbuf(p);
      const g = new Datagram(d, unchecked(this.arrivedFrom[2 * i]), unchecked(this.arrivedFrom[2 * i + 1]));
      if (r) {
        r.datagram = g;
        r.resolve(len);
      } else this.queue.push(g);
    }
    a.length = 0;
    this.arrivedFrom.length = 0;
  }

  private send(s: Stack): void {
    while (this.sends.length > 0) {
      const op = this.sends.shift();
      if (op.state != State.Pending) continue;
      const to = addr.endpoint(op.to, op.toPort);
      if (this.pcb == 0) {
        op.reject(this.name + ": send to " + to + ": the socket is closed");
        continue;
      }
      const len = op.data.length;
      const p = L.pbuf_alloc(L.PBUF_TRANSPORT, <u32>len, L.PBUF_RAM);
      if (p == 0) {
        op.reject(this.name + ": send to " + to + ": " + L.errText(L.ERR_MEM));
        continue;
      }
      if (len > 0) L.pbuf_take(p, op.data.dataStart, <u32>len);
      const e = L.udp_sendto4(this.pcb, p, op.to, op.toPort);
      L.pbuf_free(p); // udp_sendto leaves it to the caller (ARP takes its own reference)
      if (e == L.ERR_OK) {
        this.sent++;
        op.resolve(len);
      } else op.reject(this.name + ": send to " + to + ": " + L.errText(e));
    }
  }

  private doClose(s: Stack): void {
    if (this.pcb != 0) {
      L.udp_remove(this.pcb);
      this.pcb = 0;
      s.stats.udpSockets--;
    }
    s.unregister(this);
    const b = this.bindOp;
    if (b && b.pending) b.reject("udp bind on port " + this.port.toString() + ": closed");
    for (let i = 0; i < this.waits.length; i++) this.waits[i].reject(this.name + ": closed");
    this.waits.length = 0;
    this.queue.length = 0;
    const c = this.closeOp;
    if (c) c.resolve();
  }
}

/** Binds a UDP port (1-65535) of the interface. */
export function bind(port: i32): BindOp {
  const op = new BindOp();
  const name = "udp bind on port " + port.toString();
  const s = currentStack();
  if (port < 1 || port > 65535) op.reject(name + ": not a port (1 to 65535)");
  else if (!s || s.netif == 0 || s.broken.length > 0) op.reject(name + ": the network is not up (tcpip.up() first)");
  else {
    const u = new Socket(<u32>port, op);
    s.register(u);
    s.markDirty(u);
  }
  return op;
}
