// echo: the Echo Protocol (RFC 862) on TCP and UDP port 7, over lwIP (runtime/tcpip).
// Each TCP connection gets back every byte it sends, in order, until it closes its side;
// each UDP datagram goes back to its sender. The address is a DHCP lease, or ip= and gw=
// on the command line (xl extra="ip=10.0.0.2/24 gw=10.0.0.1").
//
// The console stays quiet under load: the address once, the first 10 connections, the
// first 10 errors, then nothing until the toolstack asks the domain to stop (xl shutdown
// writes control/shutdown), when one summary line gives the totals and what is still held:
//
//   echo: poweroff: 1000 connections, 1048576 bytes over TCP, 3 datagrams over UDP, 0 errors; held: 0 flows, 0 pbufs, 0 tcp pcbs, 0 pool pbufs
import { console, exit, sched, tcpip, xenstore, Future, Task } from "../../runtime";
export * from "../../runtime/tcpip/exports";

const PORT = 7;
const LOUD = 10; // connections and errors printed before going quiet

let connections = 0;
let tcpBytes: u64 = 0;
let datagrams: u64 = 0;
let errors = 0;

function error(what: string): void {
  errors++;
  if (errors <= LOUD) console.log("echo: " + what);
  if (errors == LOUD) console.log("echo: (more errors are counted, not printed)");
}

/** One connection: read, write it back (its write settles before the next read), close at EOF. */
class Echoer extends Task {
  private r: tcpip.tcp.ReadOp | null = null;
  private w: tcpip.tcp.WriteOp | null = null;
  private c: Future | null = null;
  constructor(private flow: tcpip.tcp.Flow) {
    super();
  }
  step(): void {
    const a = this.awaited;
    if (a && a === this.c) return this.finish();
    if (a && a === this.r) {
      const r = this.r!;
      if (!r.ok) {
        error(r.error);
        return this.close();
      }
      const d = r.data!;
      if (d.length == 0) return this.close(); // the peer closed its side
      tcpBytes += <u64>d.length;
      this.await((this.w = this.flow.write(d)));
      return;
    }
    if (a && a === this.w && !a.ok) {
      error(a.error);
      return this.close();
    }
    this.await((this.r = this.flow.read()));
  }
  private close(): void {
    this.await((this.c = this.flow.close()));
  }
}

/** Accepts connections for ever, one Echoer each. */
class Acceptor extends Task {
  private a: tcpip.tcp.AcceptOp | null = null;
  constructor(private listener: tcpip.tcp.Listener) {
    super();
  }
  step(): void {
    const a = this.a;
    if (a) {
      if (!a.ok) return this.fail(a.error);
      const f = a.flow!;
      connections++;
      if (connections <= LOUD) console.log("echo: connection from " + f.remote);
      if (connections == LOUD) console.log("echo: (more connections are counted, not printed)");
      sched.spawn(new Echoer(f));
    }
    this.await((this.a = this.listener.accept()));
  }
}

/** Sends every datagram back to where it came from. */
class UdpEcho extends Task {
  private r: tcpip.udp.RecvOp | null = null;
  constructor(private socket: tcpip.udp.Socket) {
    super();
  }
  step(): void {
    const r = this.r;
    if (r) {
      if (!r.ok) return this.fail(r.error);
      const d = r.datagram!;
      datagrams++;
      this.socket.sendTo4(d.from, <i32>d.port, d.data);
    }
    this.await((this.r = this.socket.recv()));
  }
}

/** Resolves when the toolstack writes control/shutdown (xl shutdown, xl reboot). */
class ShutdownWatch extends Task {
  private ev: xenstore.WatchEvent | null = null;
  private rd: xenstore.XsReply | null = null;
  request: string = "";
  constructor(private xs: xenstore.Xenstore, private w: xenstore.Watch) {
    super();
  }
  step(): void {
    const rd = this.rd;
    if (rd && rd.ok && rd.text().length > 0) {
      this.request = rd.text();
      this.xs.write("control/shutdown", ""); // the acknowledgement xl waits for
      return this.finish();
    }
    if (this.ev && this.awaited === this.ev) {
      this.await((this.rd = this.xs.read("control/shutdown")));
      return;
    }
    this.await((this.ev = this.w.next()));
  }
}

function fail(why: string): void {
  console.log("FAIL " + why);
  exit(1);
}

const up = sched.wait(tcpip.up());
if (!up.ok) fail(up.error);
const iface = up.iface!;
const l = sched.wait(tcpip.tcp.listen(PORT, 64));
if (!l.ok) fail(l.error);
const u = sched.wait(tcpip.udp.bind(PORT));
if (!u.ok) fail(u.error);
console.log("echo: " + iface.cidr + " mac " + iface.mac + ": echoing TCP and UDP on port " + PORT.toString());

const xs = xenstore.open();
const stop = sched.spawn(new ShutdownWatch(xs, xs.watch("control/shutdown", "echo-shutdown")));
const tcpTask = sched.spawn(new Acceptor(l.listener!));
const udpTask = sched.spawn(new UdpEcho(u.socket!));
const ended = sched.wait(sched.choose([stop, tcpTask, udpTask]));
if (!stop.ok) fail("the " + (ended.winner == 1 ? "TCP" : "UDP") + " server stopped: " + ended.error);

const st = iface.stats;
console.log(
  "echo: " + stop.request + ": " + connections.toString() + " connections, " + tcpBytes.toString() + " bytes over TCP, " +
    datagrams.toString() + " datagrams over UDP, " + errors.toString() + " errors; held: " + st.flows.toString() + " flows, " +
    st.pbufsHeld.toString() + " pbufs, " + tcpip.poolUsed(tcpip.POOL_TCP_PCB).toString() + " tcp pcbs, " +
    tcpip.poolUsed(tcpip.POOL_PBUF_POOL).toString() + " pool pbufs",
);
