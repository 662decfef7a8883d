// TCP over lwIP: listeners, connections (Flow) and their futures. Every method here only
// records a request and marks the endpoint dirty; its service() makes the lwIP calls, in
// the stack task (stack.ts). lwIP's events (on*) only record and settle.
//
// Receive. lwIP hands each segment's pbuf chain to onRecv; the stack task copies it into
// the flow's buffer and frees it at once (pool pbufs are few), and acknowledges bytes to
// lwIP (tcp_recved, which opens the window again) only as read() takes them: a reader
// that stops reading stops the peer, within one window (128 KiB).
//
// Send. write() resolves when all its bytes are in lwIP's send buffer (64 KiB per
// connection); a larger write goes in as room appears (tcp_sent), so a writer waits for a
// slow peer. The bytes must not change until the write has settled.
//
// Lifetime. A flow ends with close() (a FIN after the pending writes; unread data makes it
// a reset, as on Linux), abort() (a reset) or an error; every flow must be closed, even
// after an error, to be counted out (Stats.flows). Once both directions are closed the
// runtime lets go of lwIP's pcb at once, so lwIP never frees a pcb the runtime holds.
import { Future, Sleep, State, sleep } from "../sched";
import * as L from "./lwip";
import * as addr from "./addr";
import { Endpoint, Stack, currentStack, stack } from "./stack";

/** Connections a listener holds that accept() has not taken; more are refused (a reset). */
export const BACKLOG: i32 = 16;
/** How long connect() waits for the peer's answer. */
export const CONNECT_TIMEOUT_NS: i64 = 30_000_000_000;
/** read()'s default largest result. */
export const READ_MAX: i32 = 65536;

enum Phase {
  Connecting = 0,
  Open = 1,
  /** The pcb is released: closed, aborted, failed, or both directions finished. */
  Released = 2,
}

/** A read: `data` once resolved (empty: the peer closed its side). */
export class ReadOp extends Future {
  data: Uint8Array | null = null;
  constructor(
    public flow: Flow,
    public max: i32,
  ) {
    super();
  }
  protected onCancel(): void {
    this.flow.forgetRead(this);
  }
}

/** A write: resolves (value = its bytes) once they are all in lwIP's send buffer. */
export class WriteOp extends Future {
  offset: i32 = 0;
  constructor(public data: Uint8Array) {
    super();
  }
}

/** connect()'s result: `flow` once resolved. */
export class ConnectOp extends Future {
  constructor(public flow: Flow | null) {
    super();
  }
  protected onCancel(): void {
    const f = this.flow;
    if (f) f.cancelConnect();
  }
}

/** listen()'s result: `listener` once resolved. */
export class ListenOp extends Future {
  listener: Listener | null = null;
}

/** accept()'s result: `flow` once resolved. */
export class AcceptOp extends Future {
  flow: Flow | null = null;
  constructor(public listener: Listener) {
    super();
  }
  protected onCancel(): void {
    this.listener.forget(this);
  }
}

/** Marks an endpoint dirty when a timer fires. */
class DirtyOnWake extends Future {
  constructor(public e: Endpoint) {
    super();
  }
  wake(from: Future): void {
    const s = currentStack();
    if (from.ok && s) s.markDirty(this.e);
  }
}

/** One TCP connection. */
export class Flow extends Endpoint {
  pcb: usize = 0;
  /** "tcp 10.0.0.1:40000": the peer's end, the start of every error. */
  name: string;
  localPort: u32 = 0;
  phase: Phase = Phase.Connecting;
  /** The peer closed its side (FIN), and the flow's error if it failed. */
  eof: bool = false;
  error: string = "";
  /** Our side: shut down (FIN sent) or closed / aborted by the app. */
  txShut: bool = false;
  closed: bool = false;
  /** Bytes received and read, written and accepted by lwIP. */
  bytesIn: u64 = 0;
  bytesOut: u64 = 0;
  connectOp: ConnectOp | null = null;
  private deadline: Sleep | null = null;
  private connectTimeoutNs: i64 = CONNECT_TIMEOUT_NS;
  private arrived: Array<usize> = new Array<usize>();
  private rx: Array<Uint8Array> = new Array<Uint8Array>();
  private rxOff: i32 = 0;
  /** Bytes received and not yet read. */
  rxBytes: i32 = 0;
  /** Bytes read and not yet acknowledged to lwIP (tcp_recved). */
  private owed: u32 = 0;
  private reads: Array<ReadOp> = new Array<ReadOp>();
  private writes: Array<WriteOp> = new Array<WriteOp>();
  private shutdownOp: Future | null = null;
  private closeOp: Future | null = null;
  private abortOp: Future | null = null;
  private abortWhy: string = "";
  private counted: bool = true;

  constructor(
    /** The peer's address and port. */
    public remoteAddress: u32,
    public remotePort: u32,
  ) {
    super();
    this.name = "tcp " + addr.endpoint(remoteAddress, remotePort);
    stack().stats.flows++;
  }

  /** "10.0.0.1:40000". */
  get remote(): string {
    return addr.endpoint(this.remoteAddress, this.remotePort);
  }

  /**
   * The next bytes received, at most max (default 64 KiB): at once if some are buffered.
   * Resolves with empty data once the peer has closed its side and everything was read;
   * rejects with the flow's error once the buffered bytes are read.
   */
  read(max: i32 = READ_MAX): ReadOp {
    const r = new ReadOp(this, max);
    if (this.closed) r.reject(this.name + ": read after close");
    else if (max <= 0) r.reject(this.name + ": a read of " + max.toString() + " bytes");
    else if (this.reads.length == 0 && this.arrived.length == 0 && this.take(r)) {
      if (this.owed > 0) stack().markDirty(this); // tcp_recved, in the stack task
    } else {
      this.reads.push(r);
      stack().markDirty(this);
    }
    return r;
  }

  /** Queues data for sending; resolves once all of it is in lwIP's send buffer (see the header). */
  write(data: Uint8Array): WriteOp {
    const w = new WriteOp(data);
    if (this.closed) w.reject(this.name + ": write after close");
    else if (this.txShut || this.shutdownOp) w.reject(this.name + ": write after shutdown");
    else if (this.error.length > 0) w.reject(this.error);
    else if (this.phase != Phase.Open) w.reject(this.name + ": connection closed");
    else if (data.length == 0) w.resolve(0);
    else {
      this.writes.push(w);
      stack().markDirty(this);
    }
    return w;
  }

  /** Closes our side once the pending writes are queued (a FIN); reading goes on. */
  shutdown(): Future {
    const f = this.shutdownOp;
    if (f) return f;
    const g = new Future();
    this.shutdownOp = g;
    if (this.closed) g.reject(this.name + ": shutdown after close");
    else if (this.txShut) g.resolve();
    else if (this.error.length > 0) g.reject(this.error);
    else stack().markDirty(this);
    return g;
  }

  /** Sends the pending writes, then closes the connection and releases it; pending reads reject. */
  close(): Future {
    const f = this.closeOp;
    if (f) return f;
    const g = new Future();
    this.closeOp = g;
    if (this.abortOp) {
      g.resolve();
      return g;
    }
    this.closed = true;
    stack().markDirty(this);
    return g;
  }

  /** Resets the connection at once (RST) and releases it; pending reads and writes reject. */
  abort(): Future {
    const f = this.abortOp;
    if (f) return f;
    const g = new Future();
    this.abortOp = g;
    this.abortWhy = this.name + ": aborted";
    const c = this.closeOp;
    if (c && !c.pending) g.resolve(); // already closed
    else {
      this.closed = true;
      stack().markDirty(this);
    }
    return g;
  }

  forgetRead(r: ReadOp): void {
    const i = this.reads.indexOf(r);
    if (i >= 0) this.reads.splice(i, 1);
  }

  cancelConnect(): void {
    if (this.phase != Phase.Connecting) return;
    this.abortWhy = this.name + ": connection attempt cancelled";
    if (!this.abortOp) this.abortOp = new Future();
    this.closed = true;
    stack().markDirty(this);
  }

  setConnect(op: ConnectOp, timeoutNs: i64): void {
    this.connectOp = op;
    this.connectTimeoutNs = timeoutNs;
  }

  // ---- lwIP's events (inside lwIP calls: record only) ----

  onConnected(pcb: usize, err: i32): i32 {
    if (this.phase != Phase.Connecting) return L.ERR_OK;
    this.phase = Phase.Open;
    this.localPort = L.tcp_local_port(pcb); // a field read
    const d = this.deadline;
    if (d) d.cancel();
    this.deadline = null;
    const op = this.connectOp;
    if (op) op.resolve();
    stack().markDirty(this);
    return L.ERR_OK;
  }

  onRecv(p: usize): i32 {
    const s = stack();
    if (p == 0) this.eof = true;
    else {
      this.arrived.push(p); // ours now (ERR_OK); the stack task copies and frees it
      s.stats.pbufsHeld++;
    }
    s.markDirty(this);
    return L.ERR_OK;
  }

  onSent(len: u32): i32 {
    if (this.writes.length > 0 || this.shutdownOp || this.closeOp) stack().markDirty(this);
    return L.ERR_OK;
  }

  onErr(err: i32): void {
    // lwIP has freed the pcb already.
    const s = stack();
    this.pcb = 0;
    s.unregister(this);
    if (this.phase == Phase.Connecting) {
      this.failConnect(
        err == L.ERR_RST
          ? "connection refused"
          : err == L.ERR_ABRT
            ? "no answer to the connection request (lwIP gave up after retransmitting it)"
            : L.errText(err),
      );
      return;
    }
    this.phase = Phase.Released;
    if (err == L.ERR_CLSD) this.eof = true; // both sides closed: not a failure
    else if (err == L.ERR_RST) this.error = this.name + ": connection reset by peer";
    else if (err == L.ERR_ABRT)
      this.error = this.name + ": connection aborted: the peer stopped acknowledging data, or the stack ran out of connection slots";
    else this.error = this.name + ": " + L.errText(err);
    s.markDirty(this);
  }

  // ---- the stack task ----

  service(): void {
    const s = stack();
    if (this.abortOp) return this.doAbort(s);
    if (this.phase == Phase.Connecting) return this.serviceConnect(s);
    this.drain(s);
    this.serveReads();
    if (this.pcb != 0 && this.owed > 0) {
      // Reopen the window by what the app has read (tcp_recved takes a u16).
      while (this.owed > 0) {
        const n = min<u32>(this.owed, 0xffff);
        L.tcp_recved(this.pcb, n);
        this.owed -= n;
      }
    } else if (this.pcb == 0) this.owed = 0;
    this.pushWrites(s);
    const sh = this.shutdownOp;
    if (sh && sh.pending && this.writes.length == 0) {
      if (this.pcb == 0) sh.reject(this.error.length > 0 ? this.error : this.name + ": connection closed");
      else {
        const e = L.tcp_shutdown(this.pcb, 0, 1);
        if (e == L.ERR_OK) {
          this.txShut = true;
          sh.resolve();
        } else if (e == L.ERR_MEM) s.retry(this);
        else sh.reject(this.name + ": shutdown: " + L.errText(e));
      }
    }
    if (this.closeOp && (this.writes.length == 0 || this.pcb == 0)) return this.doClose(s);
    // Both directions finished: let go of the pcb now (lwIP frees TIME_WAIT pcbs silently later).
    if (this.pcb != 0 && this.eof && this.txShut) this.releasePcb(false);
  }

  private serviceConnect(s: Stack): void {
    if (this.pcb == 0) {
      const pcb = L.tcp_new();
      if (pcb == 0) return this.failConnect("no free connection (all of lwIP's MEMP_NUM_TCP_PCB are in use)");
      this.pcb = pcb;
      L.tcp_arm(pcb, this.arg); // before connecting: errors must reach us
      const e = L.tcp_connect4(pcb, this.remoteAddress, this.remotePort);
      if (e != L.ERR_OK) {
        L.tcp_disarm(pcb);
        L.tcp_close(pcb); // still CLOSED: freed at once
        this.pcb = 0;
        return this.failConnect(e == L.ERR_RTE ? "no route to the host (is the address on the interface's network, or is there a gateway?)" : L.errText(e));
      }
      const d = sleep(this.connectTimeoutNs);
      d.addWaiter(new DirtyOnWake(this));
      this.deadline = d;
      return;
    }
    const d = this.deadline;
    if (d && d.state == State.Resolved) {
      L.tcp_disarm(this.pcb);
      L.tcp_abort(this.pcb);
      this.pcb = 0;
      this.failConnect("no answer to the connection request in " + (this.connectTimeoutNs / 1_000_000_000).toString() + " s");
    }
  }

  private failConnect(why: string): void {
    const s = stack();
    if (this.pcb != 0) {
      L.tcp_disarm(this.pcb);
      L.tcp_abort(this.pcb);
      this.pcb = 0;
    }
    s.unregister(this);
    const d = this.deadline;
    if (d) d.cancel();
    this.deadline = null;
    this.phase = Phase.Released;
    this.closed = true;
    this.error = this.name + ": " + why;
    this.uncount(s);
    const op = this.connectOp;
    if (op) op.reject(this.error);
  }

  // Copies the received pbufs into the buffer and frees them.
  private drain(s: Stack): void {
    const a = this.arrived;
    if (a.length == 0) return;
    for (let i = 0; i < a.length; i++) {
      const p = unchecked(a[i]);
      const len = <i32>L.pbuf_tot_len(p);
      if (len > 0) {
        const b = new Uint8Array(len);
        L.pbuf_copy_partial(p, b.dataStart, <u32>len, 0);
        this.rx.push(b);
        this.rxBytes += len;
      }
      s.freePbuf(p);
    }
    a.length = 0;
  }

  private serveReads(): void {
    while (this.reads.length > 0) {
      const r = this.reads[0];
      if (r.state != State.Pending || this.take(r)) this.reads.shift();
      else break;
    }
  }

  // Settles r from the buffer, EOF or the error; false when it must wait.
  private take(r: ReadOp): bool {
    if (this.rxBytes > 0) {
      const n = min(r.max, this.rxBytes);
      const first = this.rx[0];
      let out: Uint8Array;
      if (this.rxOff == 0 && first.length == n) {
        out = first; // a whole segment: no copy
        this.rx.shift();
      } else {
        out = new Uint8Array(n);
        let got = 0;
        while (got < n) {
          const c = this.rx[0];
          const k = min(n - got, c.length - this.rxOff);
          memory.copy(out.dataStart + <usize>got, c.dataStart + <usize>this.rxOff, <usize>k);
          got += k;
          this.rxOff += k;
          if (this.rxOff == c.length) {
            this.rx.shift();
            this.rxOff = 0;
          }
        }
      }
      this.rxBytes -= n;
      this.owed += <u32>n;
      this.bytesIn += <u64>n;
      r.data = out;
      r.resolve(n);
      return true;
    }
    if (this.eof || (this.phase == Phase.Released && this.error.length == 0)) {
      r.data = new Uint8Array(0);
      r.resolve(0);
      return true;
    }
    if (this.error.length > 0) {
      r.reject(this.error);
      return true;
    }
    return false;
  }

  // Moves pending writes into lwIP's send buffer as far as it has room, then sends.
  private pushWrites(s: Stack): void {
    if (this.writes.length == 0) return;
    if (this.pcb == 0) {
      const why = this.error.length > 0 ? this.error : this.name + ": connection closed";
      for (let i = 0; i < this.writes.length; i++) this.writes[i].reject(why);
      this.writes.length = 0;
      return;
    }
    let wrote = false;
    while (this.writes.length > 0) {
      const w = this.writes[0];
      if (w.state != State.Pending) {
        this.writes.shift();
        continue;
      }
      const left = w.data.length - w.offset;
      if (left == 0) {
        w.resolve(w.data.length);
        this.writes.shift();
        continue;
      }
      const room = L.tcp_sndbuf(this.pcb);
      if (room == 0 || L.tcp_sndqueuelen(this.pcb) >= L.TCP_SND_QUEUELEN - 1) break; // tcp_sent says when
      const n = min<u32>(min<u32>(<u32>left, room), 0xffff);
      const more = <u32>left > n || this.writes.length > 1 ? L.TCP_WRITE_FLAG_MORE : 0;
      const e = L.tcp_write(this.pcb, w.data.dataStart + <usize>w.offset, n, L.TCP_WRITE_FLAG_COPY | more);
      if (e == L.ERR_MEM) {
        s.retry(this); // lwIP's heap or segments ran out: again on the next step
        break;
      }
      if (e != L.ERR_OK) {
        w.reject(this.name + ": write: " + L.errText(e));
        this.writes.shift();
        continue;
      }
      w.offset += <i32>n;
      this.bytesOut += <u64>n;
      wrote = true;
    }
    if (wrote) L.tcp_output(this.pcb);
  }

  // Lets go of the pcb: lwIP finishes the connection on its own (FIN handshake, TIME_WAIT).
  private releasePcb(reset: bool): void {
    const pcb = this.pcb;
    if (pcb == 0) return;
    L.tcp_disarm(pcb);
    if (reset) L.tcp_abort(pcb);
    else if (L.tcp_close(pcb) != L.ERR_OK) L.tcp_abort(pcb); // no memory for the FIN: a reset instead
    this.pcb = 0;
    stack().unregister(this);
    this.phase = Phase.Released;
  }

  private freeAll(s: Stack, why: string): void {
    for (let i = 0; i < this.arrived.length; i++) s.freePbuf(this.arrived[i]);
    this.arrived.length = 0;
    this.rx.length = 0;
    this.rxBytes = 0;
    for (let i = 0; i < this.reads.length; i++) this.reads[i].reject(why);
    this.reads.length = 0;
    for (let i = 0; i < this.writes.length; i++) this.writes[i].reject(why);
    this.writes.length = 0;
    const sh = this.shutdownOp;
    if (sh) sh.reject(why);
  }

  private doClose(s: Stack): void {
    this.freeAll(s, this.name + ": closed");
    this.releasePcb(false);
    this.uncount(s);
    this.closeOp!.resolve();
  }

  private doAbort(s: Stack): void {
    this.freeAll(s, this.abortWhy);
    const d = this.deadline;
    if (d) d.cancel();
    this.deadline = null;
    const op = this.connectOp;
    if (op && op.pending) op.reject(this.abortWhy);
    this.releasePcb(true);
    s.unregister(this);
    this.phase = Phase.Released;
    this.uncount(s);
    this.abortOp!.resolve();
    const c = this.closeOp;
    if (c) c.resolve();
  }

  /** Aborts a connection the app never saw (a closing listener's queue). */
  abortUnseen(s: Stack): void {
    this.abortWhy = this.name + ": the listener closed";
    this.abortOp = new Future();
    this.closed = true;
    this.doAbort(s);
  }

  private uncount(s: Stack): void {
    if (this.counted) {
      this.counted = false;
      s.stats.flows--;
    }
  }
}

/** A listening port: accept() takes the connections it receives. */
export class Listener extends Endpoint {
  pcb: usize = 0;
  /** "tcp listen on port 80", the start of every error. */
  name: string;
  closed: bool = false;
  private queue: Array<Flow> = new Array<Flow>();
  private waits: Array<AcceptOp> = new Array<AcceptOp>();
  private closeOp: Future | null = null;

  constructor(
    public port: u32,
    public backlog: i32,
    public listenOp: ListenOp | null,
  ) {
    super();
    this.name = "tcp listen on port " + port.toString();
  }

  /** The next connection (at once if one waits). */
  accept(): AcceptOp {
    const a = new AcceptOp(this);
    if (this.queue.length > 0) {
      a.flow = this.queue.shift();
      a.resolve();
    } else if (this.closed) a.reject(this.name + ": closed");
    else this.waits.push(a);
    return a;
  }

  /** Connections received and not yet accepted. */
  pending(): i32 {
    return this.queue.length;
  }

  /** Stops listening; connections not yet accepted are reset, pending accepts reject. */
  close(): Future {
    const f = this.closeOp;
    if (f) return f;
    const g = new Future();
    this.closeOp = g;
    this.closed = true;
    stack().markDirty(this);
    return g;
  }

  forget(a: AcceptOp): void {
    const i = this.waits.indexOf(a);
    if (i >= 0) this.waits.splice(i, 1);
  }

  onAccept(pcb: usize, err: i32): i32 {
    const s = stack();
    if (err != L.ERR_OK || pcb == 0 || this.closed) return L.ERR_MEM; // lwIP aborts it
    let waiter: AcceptOp | null = null;
    while (this.waits.length > 0 && !waiter) {
      const w = this.waits.shift();
      if (w.state == State.Pending) waiter = w;
    }
    if (!waiter && this.queue.length >= this.backlog) {
      s.stats.acceptRefused++;
      return L.ERR_MEM; // lwIP resets it: the backlog is full
    }
    // Field reads and the arming of the new pcb: allowed inside the callback (lwip/glue.c).
    const f = new Flow(L.tcp_remote_ip4(pcb), L.tcp_remote_port(pcb));
    f.localPort = this.port;
    f.pcb = pcb;
    f.phase = Phase.Open;
    s.register(f);
    L.tcp_arm(pcb, f.arg);
    s.stats.accepted++;
    if (waiter) {
      waiter.flow = f;
      waiter.resolve();
    } else this.queue.push(f);
    return L.ERR_OK;
  }

  service(): void {
    const s = stack();
    const op = this.listenOp;
    if (op && op.pending && this.pcb == 0 && !this.closed) this.open(s, op);
    if (this.closed) this.doClose(s);
  }

  private open(s: Stack, op: ListenOp): void {
    const pcb = L.tcp_new();
    if (pcb == 0) return this.refuse(s, op, "no free connection (all of lwIP's MEMP_NUM_TCP_PCB are in use)");
    const e = L.tcp_bind4(pcb, 0, this.port);
    if (e != L.ERR_OK) {
      L.tcp_close(pcb);
      return this.refuse(s, op, L.errText(e));
    }
    const lpcb = L.tcp_listen_with_backlog(pcb, <u32>min(this.backlog, 255));
    if (lpcb == 0) {
      L.tcp_close(pcb);
      return this.refuse(s, op, "no free listening slot (lwIP's MEMP_NUM_TCP_PCB_LISTEN)");
    }
    this.pcb = lpcb; // tcp_listen freed pcb
    L.tcp_arm_listen(lpcb, this.arg);
    s.stats.listeners++;
    op.listener = this;
    op.resolve();
  }

  private refuse(s: Stack, op: ListenOp, why: string): void {
    s.unregister(this);
    this.closed = true;
    op.reject(this.name + ": " + why);
  }

  private doClose(s: Stack): void {
    if (this.pcb != 0) {
      L.tcp_close(this.pcb); // a listening pcb is freed at once
      this.pcb = 0;
      s.stats.listeners--;
    }
    s.unregister(this);
    const op = this.listenOp;
    if (op && op.pending) op.reject(this.name + ": closed");
    for (let i = 0; i < this.queue.length; i++) this.queue[i].abortUnseen(s);
    this.queue.length = 0;
    for (let i = 0; i < this.waits.length; i++) this.waits[i].reject(this.name + ": closed");
    this.waits.length = 0;
    const c = this.closeOp;
    if (c) c.resolve();
  }
}

// "the network is not up" check shared by listen() and connect(); the stack, or null.
function upStack(): Stack | null {
  const s = currentStack();
  return s && s.netif != 0 && s.broken.length == 0 ? s : null;
}

/** Listens on a TCP port (1-65535) of the interface; at most backlog connections wait for accept(). */
export function listen(port: i32, backlog: i32 = BACKLOG): ListenOp {
  const op = new ListenOp();
  const name = "tcp listen on port " + port.toString();
  const s = upStack();
  if (port < 1 || port > 65535) op.reject(name + ": not a port (1 to 65535)");
  else if (backlog < 1) op.reject(name + ": a backlog of " + backlog.toString() + " (at least 1)");
  else if (!s) op.reject(name + ": the network is not up (tcpip.up() first)");
  else {
    const l = new Listener(<u32>port, backlog, op);
    s.register(l);
    s.markDirty(l);
  }
  return op;
}

/** Connects to address:port ("10.0.0.9", 5000); rejects after timeoutNs (30 s) without an answer. */
export function connect(address: string, port: i32, timeoutNs: i64 = CONNECT_TIMEOUT_NS): ConnectOp {
  const a = addr.parse(address);
  const s = upStack();
  const where = "tcp " + address + ":" + port.toString();
  if (a < 0 || a == 0 || port < 1 || port > 65535 || !s) {
    const op = new ConnectOp(null);
    if (a < 0 || a == 0) op.reject(where + ": not an IPv4 address");
    else if (port < 1 || port > 65535) op.reject(where + ": not a port (1 to 65535)");
    else op.reject(where + ": the network is not up (tcpip.up() first)");
    return op;
  }
  const f = new Flow(<u32>a, <u32>port);
  const op = new ConnectOp(f);
  f.setConnect(op, timeoutNs);
  s!.register(f);
  s!.markDirty(f);
  return op;
}
