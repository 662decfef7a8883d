// The stack task: the one runtime task that makes every lwIP call. It brings lwIP up on a
// network device (net.Device: MAC, MTU), feeds it the frames the device receives, runs
// its timers, services the endpoints (TCP flows and listeners, UDP sockets) that have work,
// and re-arms one scheduler timer for lwIP's next timeout. lwIP's callbacks (exports.ts)
// run inside those calls: they only record what happened, mark the endpoint dirty and
// ring the task's bell; the endpoint's service() makes the lwIP calls that follow, later in
// the same step or the next one.
//
// Frames. The device's frames are queued (rxQueueMax, more are dropped and counted),
// copied into a chain of pool pbufs (PBUF_POOL, 1536 bytes each) and handed to lwIP,
// which owns them from then on. Frames lwIP sends (linkoutput) are copied to the device;
// when more than txBacklog frames already wait for the device's TX ring the frame is
// dropped, as a NIC with a full queue drops it (TCP retransmits), and counted.
//
// Addresses. A static address comes from UpOptions or the kernel command line
// (`ip=10.0.0.2/24 gw=10.0.0.1`, the xl config's extra=); without one, DHCP, with a
// deadline (dhcpTimeoutNs, 10 s) on up().
import * as abi from "../abi";
import * as boot from "../boot";
import * as net from "../net";
import { Future, Sleep, State, Task, sleepUntil, spawn, timeout } from "../sched";
import * as L from "./lwip";
import * as addr from "./addr";

/** How long up() waits for a DHCP lease. */
export const DHCP_TIMEOUT_NS: i64 = 10_000_000_000;
/** Received frames waiting for the stack task; more are dropped (counted in rxDropped). */
export const RX_QUEUE_MAX: i32 = 1024;
/** Frames waiting for the device's TX ring beyond which lwIP's frames are dropped. */
export const TX_BACKLOG: i32 = 256;
/** Frames fed to lwIP per step before other tasks get a turn. */
const STEP_FRAMES: i32 = 256;
const NS_PER_MS: i64 = 1_000_000;

/** What lwIP calls back under an arg: a TCP flow or listener, a UDP socket (tcp.ts, udp.ts). */
export class Endpoint {
  /** lwIP's callback arg for this endpoint (0: not registered). */
  arg: u32 = 0;
  dirty: bool = false;

  /** Makes the lwIP calls the endpoint's state asks for; runs in the stack task only. */
  service(): void {}

  // lwIP's events (exports.ts); they only record. The defaults refuse or drop.
  onAccept(pcb: usize, err: i32): i32 {
    return L.ERR_MEM; // lwIP aborts the new connection
  }
  onConnected(pcb: usize, err: i32): i32 {
    return L.ERR_OK;
  }
  onRecv(p: usize): i32 {
    if (p) stack().orphan(p);
    return L.ERR_OK;
  }
  onSent(len: u32): i32 {
    return L.ERR_OK;
  }
  onErr(err: i32): void {}
  onUdp(p: usize, ip: u32, port: u32): void {
    stack().orphan(p);
  }
}

/** Counters a test or app can read (Interface.stats, or stats() before up()). */
export class Stats {
  /** Frames handed to lwIP, and their bytes. */
  rxFrames: u64 = 0;
  rxBytes: u64 = 0;
  /** Frames dropped: the stack task's queue was full; no pool pbuf was free; longer than 65535 bytes. */
  rxDropped: u64 = 0;
  rxNoPbuf: u64 = 0;
  rxTooLong: u64 = 0;
  /** Frames lwIP sent, and their bytes. */
  txFrames: u64 = 0;
  txBytes: u64 = 0;
  /** Frames dropped because txBacklog frames already waited for the TX ring (back-pressure). */
  txDropped: u64 = 0;
  /** Frames the device refused (the reason of the last one in lastTxError). */
  txErrors: u64 = 0;
  lastTxError: string = "";
  /** Received pbufs the runtime holds (lwIP gave them to a callback; the stack task frees them). */
  pbufsHeld: i32 = 0;
  /** Endpoints lwIP may call back (flows with a pcb, listeners, UDP sockets). */
  endpoints: i32 = 0;
  /** TCP flows not yet closed by the app (accepted or connected; each must be closed). */
  flows: i32 = 0;
  listeners: i32 = 0;
  udpSockets: i32 = 0;
  /** Connections refused because a listener's backlog was full, and accepted in all. */
  acceptRefused: u64 = 0;
  accepted: u64 = 0;
  /** Datagrams dropped because a socket's receive queue was full. */
  udpDropped: u64 = 0;
  /** pbufs lwIP handed to an endpoint that was already gone (freed). */
  orphans: u64 = 0;
  /** Steps of the stack task. */
  steps: u64 = 0;
  /** Set when the host had no entropy source: lwIP's ISNs and ports come from a clock-seeded generator. */
  weakRandom: bool = false;
}

/** How up() configures the interface. */
export class UpOptions {
  /** A device already opened; null: net.open(netOptions) (the first vif). */
  device: net.Device | null = null;
  netOptions: net.OpenOptions | null = null;
  /** A static address with its prefix length, "10.0.0.2/24"; "dhcp" or "": the command line's ip=, else DHCP. */
  address: string = "";
  /** The default gateway with a static address ("": the command line's gw=, else none). */
  gateway: string = "";
  /** Whether the kernel command line's ip= and gw= count (when address is ""). */
  useCmdline: bool = true;
  dhcpTimeoutNs: i64 = DHCP_TIMEOUT_NS;
  rxQueueMax: i32 = RX_QUEUE_MAX;
  txBacklog: i32 = TX_BACKLOG;
}

/** The interface as configured: address, netmask, gateway, MAC, MTU, link state. */
export class Interface {
  constructor(private s: Stack) {}

  /** The address, netmask and gateway as lwIP holds them (addr.ts); 0 for none. */
  get address(): u32 {
    return this.s.ip;
  }
  get netmask(): u32 {
    return this.s.mask;
  }
  get gateway(): u32 {
    return this.s.gw;
  }
  /** The netmask's prefix length (24). */
  get prefix(): i32 {
    return addr.prefixOf(this.s.mask);
  }
  /** "10.0.0.2". */
  get addressText(): string {
    return addr.text(this.s.ip);
  }
  get gatewayText(): string {
    return addr.text(this.s.gw);
  }
  /** "10.0.0.2/24". */
  get cidr(): string {
    return addr.text(this.s.ip) + "/" + this.prefix.toString();
  }
  /** "00:16:3e:00:00:01". */
  get mac(): string {
    return this.s.dev.macText;
  }
  /** The largest IP packet. */
  get mtu(): i32 {
    return this.s.dev.mtu;
  }
  /** False once the device failed or closed. */
  get linkUp(): bool {
    return this.s.dev.broken.length == 0;
  }
  /** Whether the address is a DHCP lease. */
  get dhcp(): bool {
    return this.s.dhcp;
  }
  get device(): net.Device {
    return this.s.dev;
  }
  /** "vif 0". */
  get name(): string {
    return this.s.dev.name;
  }
  get stats(): Stats {
    return this.s.stats;
  }
}

/** A static configuration, or DHCP. */
class Config {
  dhcp: bool = true;
  ip: u32 = 0;
  mask: u32 = 0;
  gw: u32 = 0;
  error: string = "";
}

/** Wakes the stack task when a timer fires or a future it watches settles. */
class Ringer extends Future {
  constructor(private s: Stack) {
    super();
  }
  wake(from: Future): void {
    if (from.ok) this.s.ring();
  }
}

/** Receives the device's frames, in the event loop: queues them for the stack task. */
class RxHandler extends net.FrameHandler {
  constructor(private s: Stack) {
    super();
  }
  onFrame(f: net.Frame): void {
    this.s.onFrame(f);
  }
}

export class Stack extends Task {
  netif: usize = 0;
  private mac: usize = 0;
  ip: u32 = 0;
  mask: u32 = 0;
  gw: u32 = 0;
  dhcp: bool = false;
  /** Set when lwIP could not be brought up: why. */
  broken: string = "";
  stats: Stats = new Stats();
  private ifaceObj: Interface | null = null;
  rxQueueMax: i32 = RX_QUEUE_MAX;
  txBacklog: i32 = TX_BACKLOG;
  private started: bool = false;
  /** The interface has its address (static, or a bound DHCP lease), as the stack task last read it. */
  private addressed: bool = false;
  private statusChanged: bool = false;
  private addressWaits: Array<Future> = new Array<Future>();
  private rxq: Array<net.Frame> = new Array<net.Frame>();
  private dirtyList: Array<Endpoint> = new Array<Endpoint>();
  private retryList: Array<Endpoint> = new Array<Endpoint>();
  private orphans: Array<usize> = new Array<usize>();
  private slots: Array<Endpoint | null> = new Array<Endpoint | null>();
  private gens: Array<u32> = new Array<u32>();
  private freeSlots: Array<i32> = new Array<i32>();
  private bell: Future | null = null;
  private timer: Sleep | null = null;
  private timerAt: i64 = 0;
  private ringer: Ringer | null = null;
  private scratch: Uint8Array = new Uint8Array(0);

  constructor(
    public dev: net.Device,
    private config: Config,
  ) {
    super();
    this.dhcp = config.dhcp;
  }

  /** The interface this stack runs (one Interface object for its whole life). */
  get iface(): Interface {
    let i = this.ifaceObj;
    if (!i) this.ifaceObj = i = new Interface(this);
    return i;
  }

  // ---- the task ----

  step(): void {
    this.stats.steps++;
    if (!this.started) {
      this.started = true;
      const why = this.start();
      if (why.length > 0) {
        this.broken = why;
        this.settleAddressWaits();
        this.fail(why);
        return;
      }
    }
    // Endpoints that could not finish (lwIP out of memory) try again on every step.
    if (this.retryList.length > 0) {
      const r = this.retryList;
      this.retryList = new Array<Endpoint>();
      for (let i = 0; i < r.length; i++) this.markDirty(r[i]);
    }
    this.feed();
    L.sys_check_timeouts();
    this.serviceDirty();
    this.freeOrphans();
    if (this.statusChanged) {
      this.statusChanged = false;
      this.readAddress();
    }
    this.armTimer();
    if (this.rxq.length > 0 || this.dirtyList.length > 0) {
      this.yieldNow(); // more than one step's worth: let other tasks run first
      return;
    }
    const b = new Future();
    this.bell = b;
    this.await(b);
  }

  /** Wakes the task (at once if it waits; a no-op while it runs, which finds the work itself). */
  ring(): void {
    const b = this.bell;
    if (b && b.pending) b.resolve();
  }

  /** Queues e for service() in the stack task. */
  markDirty(e: Endpoint): void {
    if (!e.dirty) {
      e.dirty = true;
      this.dirtyList.push(e);
    }
    this.ring();
  }

  /** Services e again on the next step (lwIP had no memory for what it asked). */
  retry(e: Endpoint): void {
    if (!this.retryList.includes(e)) this.retryList.push(e);
  }

  private serviceDirty(): void {
    // Servicing can dirty endpoints again (lwIP's callbacks in tcp_output and the like): a few rounds.
    for (let round = 0; round < 4 && this.dirtyList.length > 0; round++) {
      const list = this.dirtyList;
      this.dirtyList = new Array<Endpoint>();
      for (let i = 0; i < list.length; i++) {
        const e = unchecked(list[i]);
        e.dirty = false;
        e.service();
      }
    }
  }

  // ---- bring-up ----

  // lwIP, the interface and DHCP; "" or why it failed.
  private start(): string {
    L.lwip_init();
    const size = <usize>L.netif_size();
    const netif = heap.alloc(size);
    memory.fill(netif, 0, size);
    const mac = heap.alloc(6);
    const m = this.dev.mac;
    for (let i = 0; i < 6; i++) store<u8>(mac + <usize>i, m[i]);
    this.mac = mac;
    const c = this.config;
    if (L.netif_add(netif, mac, <u32>this.dev.mtu, c.dhcp ? 0 : c.ip, c.dhcp ? 0 : c.mask, c.dhcp ? 0 : c.gw) != netif)
      return "tcpip: lwIP refused the interface of " + this.dev.name;
    this.netif = netif;
    this.dev.onFrame(new RxHandler(this));
    L.netif_set_link_up(netif);
    L.netif_set_up(netif);
    if (c.dhcp) {
      const e = L.dhcp_start(netif);
      if (e != L.ERR_OK) return "tcpip: DHCP could not start on " + this.dev.name + ": " + L.errText(e);
    }
    this.readAddress();
    return "";
  }

  private readAddress(): void {
    const n = this.netif;
    if (n == 0) return;
    this.ip = L.netif_ip4(n);
    this.mask = L.netif_mask4(n);
    this.gw = L.netif_gw4(n);
    this.addressed = this.ip != 0 && (!this.dhcp || L.dhcp_bound(n) != 0);
    if (this.addressed) this.settleAddressWaits();
  }

  private settleAddressWaits(): void {
    const ws = this.addressWaits;
    this.addressWaits = new Array<Future>();
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i];
      if (this.broken.length > 0) w.reject(this.broken);
      else w.resolve();
    }
  }

  /** Resolves once the interface has an address (at once if it has); rejects if lwIP could not start. */
  whenAddressed(): Future {
    const f = new Future();
    if (this.broken.length > 0) f.reject(this.broken);
    else if (this.addressed) f.resolve();
    else this.addressWaits.push(f);
    return f;
  }

  // ---- frames ----

  onFrame(f: net.Frame): void {
    if (this.rxq.length >= this.rxQueueMax) {
      this.stats.rxDropped++;
      return;
    }
    this.rxq.push(f);
    this.ring();
  }

  // Hands queued frames to lwIP, at most STEP_FRAMES of them.
  private feed(): void {
    if (this.rxq.length == 0 || this.netif == 0) return;
    let q = this.rxq;
    this.rxq = new Array<net.Frame>();
    if (q.length > STEP_FRAMES) {
      this.rxq = q.slice(STEP_FRAMES);
      q = q.slice(0, STEP_FRAMES);
    }
    for (let i = 0; i < q.length; i++) {
      const f = unchecked(q[i]);
      const d = f.data;
      const len = d.length;
      if (len > 0xffff) {
        this.stats.rxTooLong++;
        continue;
      }
      // dom0's own frames may carry a blank TCP/UDP checksum; lwIP checks every checksum.
      if (f.csumBlank) net.fillChecksum(d);
      const p = L.pbuf_alloc(L.PBUF_RAW, <u32>len, L.PBUF_POOL);
      if (p == 0) {
        this.stats.rxNoPbuf++;
        continue;
      }
      L.pbuf_take(p, d.dataStart, <u32>len);
      this.stats.rxFrames++;
      this.stats.rxBytes += <u64>len;
      L.input(p, this.netif); // p is lwIP's from here, whatever the result
    }
  }

  /** lwIP's frame to send (inside an lwIP call): copied to the device, or dropped when its queue is long. */
  onLinkOutput(p: usize): i32 {
    const dev = this.dev;
    if (dev.queued() >= this.txBacklog) {
      this.stats.txDropped++;
      return L.ERR_OK; // a NIC with a full queue drops; TCP retransmits
    }
    const len = L.pbuf_tot_len(p);
    let ptr = L.pbuf_payload(p);
    if (L.pbuf_len(p) != len) {
      // A chain (headers in one pbuf, data in others): one contiguous copy for the device.
      if (<u32>this.scratch.length < len) this.scratch = new Uint8Array(<i32>max<u32>(len, 2048));
      ptr = this.scratch.dataStart;
      L.pbuf_copy_partial(p, ptr, len, 0);
    }
    const op = dev.sendFrom(ptr, <i32>len); // copied before it returns
    if (op.failed) {
      this.stats.txErrors++;
      this.stats.lastTxError = op.error;
    } else {
      this.stats.txFrames++;
      this.stats.txBytes += <u64>len;
    }
    return L.ERR_OK;
  }

  onStatus(): void {
    this.statusChanged = true;
    this.ring();
  }

  // ---- pbufs lwIP gave to an endpoint that is gone ----

  orphan(p: usize): void {
    this.stats.orphans++;
    this.stats.pbufsHeld++;
    this.orphans.push(p);
    this.ring();
  }

  private freeOrphans(): void {
    for (let i = 0; i < this.orphans.length; i++) this.freePbuf(this.orphans[i]);
    this.orphans.length = 0;
  }

  /** Frees a received pbuf the runtime held (stack task only). */
  freePbuf(p: usize): void {
    L.pbuf_free(p);
    this.stats.pbufsHeld--;
  }

  // ---- endpoints by arg ----

  /** Gives e an arg for lwIP's callbacks: its slot + 1 in the low 16 bits, a generation above. */
  register(e: Endpoint): void {
    let slot: i32;
    if (this.freeSlots.length > 0) slot = this.freeSlots.pop();
    else {
      slot = this.slots.length;
      this.slots.push(null);
      this.gens.push(0);
    }
    const gen = (unchecked(this.gens[slot]) + 1) & 0xffff;
    unchecked((this.gens[slot] = gen));
    unchecked((this.slots[slot] = e));
    e.arg = (gen << 16) | <u32>(slot + 1);
    this.stats.endpoints++;
  }

  /** lwIP will not call back under e's arg again (its pcb is disarmed, closed or gone). */
  unregister(e: Endpoint): void {
    const a = e.arg;
    if (a == 0) return;
    const slot = <i32>(a & 0xffff) - 1;
    if (slot >= 0 && slot < this.slots.length && unchecked(this.slots[slot]) === e) {
      unchecked((this.slots[slot] = null));
      this.freeSlots.push(slot);
      this.stats.endpoints--;
    }
    e.arg = 0;
  }

  /** The endpoint registered under arg, or null (a stale or foreign arg). */
  lookup(arg: u32): Endpoint | null {
    const slot = <i32>(arg & 0xffff) - 1;
    if (slot < 0 || slot >= this.slots.length) return null;
    const e = unchecked(this.slots[slot]);
    return e && e.arg == arg ? e : null;
  }

  // ---- lwIP's timers ----

  // One scheduler timer at lwIP's next timeout (sys_timeouts_sleeptime), moved earlier when needed.
  private armTimer(): void {
    const ms = L.timeouts_sleeptime();
    if (ms == L.SLEEPTIME_INFINITE) return;
    const at = (abi.clock_monotonic() / NS_PER_MS + <i64>ms) * NS_PER_MS;
    const t = this.timer;
    if (t && t.state == State.Pending && this.timerAt <= at) return;
    if (t) t.cancel();
    const s = sleepUntil(at);
    let r = this.ringer;
    if (!r) this.ringer = r = new Ringer(this);
    s.addWaiter(r);
    this.timer = s;
    this.timerAt = at;
  }
}

// ---- the one stack ----

// @lazy: an app that never brings the network up compiles none of this (nor its classes).
@lazy let current: Stack | null = null;
@lazy let randPool: StaticArray<u32> | null = null;
@lazy let randLeft: i32 = 0;
@lazy let randState: u64 = 0;

/** The stack (after up()); traps if none: only lwIP's callbacks and the endpoints call this. */
export function stack(): Stack {
  return current!;
}

/** The stack if up() has started one. */
export function currentStack(): Stack | null {
  return current;
}

@lazy let zeroStats: Stats | null = null;

/** The counters (zeros before up()). */
export function stats(): Stats {
  const s = current;
  if (s) return s.stats;
  let z = zeroStats;
  if (!z) zeroStats = z = new Stats();
  return z;
}

/** lwIP's clock: monotonic milliseconds (wrapping u32). */
export function nowMs(): u32 {
  return <u32>(abi.clock_monotonic() / NS_PER_MS);
}

/** lwIP's LWIP_RAND: 32 bits from entropy_fill, 16 words fetched at a time. */
export function rand32(): u32 {
  let pool = randPool;
  if (!pool) randPool = pool = new StaticArray<u32>(16);
  if (randLeft == 0) {
    const n = abi.entropy_fill(changetype<usize>(pool), 64);
    if (n != 64) {
      // No entropy source (ENOSYS) or a failing one: a clock-seeded splitmix64, and say so.
      const s = current;
      if (s) s.stats.weakRandom = true;
      if (randState == 0) randState = <u64>abi.clock_monotonic() ^ (<u64>abi.clock_wall() << 17);
      for (let i = 0; i < 16; i++) {
        randState += 0x9e3779b97f4a7c15;
        let z = randState;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        unchecked((pool[i] = <u32>(z ^ (z >> 31))));
      }
    }
    randLeft = 16;
  }
  return unchecked(pool[--randLeft]);
}

// ---- configuration ----

// The configuration from the options, else the command line (ip=10.0.0.2/24 gw=10.0.0.1), else DHCP.
function configure(o: UpOptions): Config {
  const c = new Config();
  let ip = o.address;
  let gw = o.gateway;
  let where = "UpOptions.";
  if (ip.length == 0 && o.useCmdline) {
    const args = boot.args();
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a.startsWith("ip=")) ip = a.substring(3);
      else if (a.startsWith("gw=") && gw.length == 0) gw = a.substring(3);
    }
    where = "";
  }
  if (ip.length == 0 || ip == "dhcp") {
    if (gw.length > 0 && where.length == 0) {
      c.error = "tcpip: gw=" + gw + " on the command line needs a static address (ip=10.0.0.2/24 gw=" + gw + ")";
    }
    return c;
  }
  const name = where.length > 0 ? where + "address \"" + ip + "\"" : "ip=" + ip + " on the command line";
  const slash = ip.indexOf("/");
  if (slash < 0) {
    c.error = "tcpip: " + name + " needs a prefix length, like 10.0.0.2/24";
    return c;
  }
  const a = addr.parse(ip.substring(0, slash));
  const ptext = ip.substring(slash + 1);
  let prefix: i32 = -1;
  if (ptext.length > 0 && ptext.length <= 2) {
    prefix = 0;
    for (let i = 0; i < ptext.length; i++) {
      const ch = ptext.charCodeAt(i);
      if (ch < 48 || ch > 57) {
        prefix = -1;
        break;
      }
      prefix = prefix * 10 + ch - 48;
    }
  }
  if (a < 0 || prefix < 1 || prefix > 30) {
    c.error = "tcpip: " + name + " is not an IPv4 address with a prefix length from 1 to 30, like 10.0.0.2/24";
    return c;
  }
  c.dhcp = false;
  c.ip = <u32>a;
  c.mask = addr.maskOf(prefix);
  if (gw.length > 0) {
    const g = addr.parse(gw);
    const gname = where.length > 0 ? where + "gateway \"" + gw + "\"" : "gw=" + gw + " on the command line";
    if (g < 0) {
      c.error = "tcpip: " + gname + " is not an IPv4 address";
      return c;
    }
    if ((<u32>g & c.mask) != (c.ip & c.mask)) {
      c.error = "tcpip: " + gname + " is not on the network " + addr.text(c.ip & c.mask) + "/" + prefix.toString() + " of " + addr.text(c.ip);
      return c;
    }
    c.gw = <u32>g;
  }
  return c;
}

// ---- up() ----

/** The result of up(): `iface` once resolved. */
export class UpOp extends Task {
  iface: Interface | null = null;
  private stage: i32 = 0;
  private open: net.OpenOp | null = null;
  private config: Config | null = null;
  private s: Stack | null = null;

  constructor(private opts: UpOptions) {
    super();
  }

  step(): void {
    const a = this.awaited;
    if (this.stage == 0) {
      const s = current;
      if (s) {
        // One interface: a second up() waits for the first one's address.
        this.s = s;
        return this.waitAddress(s);
      }
      const c = configure(this.opts);
      if (c.error.length > 0) return this.fail(c.error);
      this.config = c;
      if (this.opts.device) return this.begin(this.opts.device!);
      this.stage = 1;
      this.await((this.open = net.open(this.opts.netOptions)));
      return;
    }
    if (this.stage == 1) {
      const o = this.open!;
      if (!o.ok) return this.fail("tcpip: " + o.error);
      if (current) {
        // Another up() brought the stack up meanwhile: this device is not needed.
        o.device!.close();
        this.s = current;
        return this.waitAddress(current!);
      }
      return this.begin(o.device!);
    }
    // stage 2: the address, or the deadline
    const s = this.s!;
    if (a!.ok) {
      this.iface = s.iface;
      this.finish();
      return;
    }
    if (s.broken.length > 0) return this.fail(s.broken);
    if (s.dhcp)
      return this.fail(
        "tcpip: no DHCP lease in " + seconds(this.opts.dhcpTimeoutNs) + " on " + s.dev.name + ": is the vif on a bridge with a DHCP server?",
      );
    this.fail("tcpip: " + s.dev.name + " got no address: " + a!.error);
  }

  private begin(dev: net.Device): void {
    const s = new Stack(dev, this.config!);
    s.rxQueueMax = this.opts.rxQueueMax;
    s.txBacklog = this.opts.txBacklog;
    current = s;
    this.s = s;
    spawn(s);
    this.waitAddress(s);
  }

  private waitAddress(s: Stack): void {
    this.stage = 2;
    this.await(timeout(s.whenAddressed(), this.opts.dhcpTimeoutNs));
  }
}

function seconds(ns: i64): string {
  if (ns % 1_000_000_000 == 0) return (ns / 1_000_000_000).toString() + " s";
  return (ns / NS_PER_MS).toString() + " ms";
}

/**
 * Brings the TCP/IP stack up on a network interface (the first vif, or opts.device) and
 * resolves with the Interface once it has an address: static (opts, or ip= and gw= on the
 * kernel command line) or a DHCP lease within opts.dhcpTimeoutNs (10 s). There is one
 * interface: a later up() resolves with the same one.
 */
export function up(opts: UpOptions | null = null): UpOp {
  return spawn(new UpOp(opts ? opts : new UpOptions()));
}

/**
 * Elements in use in one of lwIP's static pools (lwip.ts POOL_*), for leak tests: a read
 * of lwIP's free lists that changes nothing. 0 before up().
 */
export function poolUsed(which: u32): u32 {
  const s = current;
  if (!s || s.netif == 0) return 0;
  return L.pool_used(which);
}
