// An emulated xenstored serving the guest over the xenstore ring in its linear
// memory (store_ring_map, ABI §7), with the real wire protocol (xs-wire.ts), the
// standard domU tree, permissions, transactions (EAGAIN on conflict) and watches
// (an initial event on registration, as the real daemon sends).
// It runs when the guest notifies the store port and when the guest blocks.
// Hostile modes for tests (`hostile`, flood()): a xenstored that stops answering,
// answers late, or floods a watch with events.
import { EACCES, EAGAIN, EBUSY, EEXIST, EINVAL, ENOENT, ENOSYS, GuestFault } from "./errno.ts";
import { BackendEnd } from "./event-channels.ts";
import { XsTree, XsError, Perm, parsePerm, permString, canonical } from "./xs-tree.ts";
import { XS, HEADER_SIZE, PAYLOAD_MAX, RING, ERROR_RINGIDX, XsMsg, encodeMsg, strings } from "./xs-wire.ts";

/** errno → the name xenstored sends in XS_ERROR (xsd_errors[] in xs_wire.h). */
const ERRNAME: Record<number, string> = {
  22: "EINVAL",
  13: "EACCES",
  17: "EEXIST",
  21: "EISDIR",
  2: "ENOENT",
  12: "ENOMEM",
  28: "ENOSPC",
  5: "EIO",
  39: "ENOTEMPTY",
  38: "ENOSYS",
  30: "EROFS",
  16: "EBUSY",
  11: "EAGAIN",
  106: "EISCONN",
  7: "E2BIG",
  1: "EPERM",
};

export interface XenstoredHooks {
  /** Sees each complete request exactly as the guest encoded it (golden-bytes tests). */
  rawRequest?(bytes: Uint8Array): void;
  /** Called before each guest request is processed (e.g. a racing dom0 write). */
  beforeRequest?(req: XsMsg, xs: Xenstored): void;
  /** Returns raw bytes to send instead of the reply (malformed-reply tests). */
  reply?(req: XsMsg, reply: Uint8Array, xs: Xenstored): Uint8Array | undefined;
}

/** A xenstored that misbehaves (tests of the guest's deadlines and bounds). */
export interface XenstoredFaults {
  /** From this request on (counted from 0), requests are taken off the ring and never answered. */
  silentFrom?: number;
  /** Requests (counted from 0) whose output is held back until the next request's, or releaseHeld(). */
  hold?: number[];
}

/** n watch events, made as the ring takes them (a flood costs no memory here). */
class Flood {
  constructor(
    public left: number,
    readonly make: (i: number) => Uint8Array,
    public i = 0,
  ) {}
}

interface Watch {
  path: string; // absolute, or @special
  token: string;
  rel: boolean;
}

type Op =
  | { kind: "write"; path: string; value: Uint8Array }
  | { kind: "mkdir" | "rm"; path: string }
  | { kind: "perms"; path: string; perms: Perm[] };

interface Tx {
  tree: XsTree;
  pristine: XsTree;
  seen: Map<string, number>;
  ops: Op[];
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export class Xenstored {
  readonly tree = new XsTree();
  hooks: XenstoredHooks = {};
  /** Deliver at most one reply byte per service (byte-at-a-time parsing tests). */
  trickle = false;
  /** Misbehaviour (tests): see XenstoredFaults. */
  hostile: XenstoredFaults = {};
  /** Requests taken and never answered (hostile.silentFrom), and outputs held back now. */
  unanswered = 0;
  private held: Uint8Array[] = [];
  /** Protocol violations by the guest, in order. */
  readonly faults: string[] = [];
  port?: BackendEnd;
  requests = 0;
  /** Services that wrote reply bytes, and the bytes written (equal in trickle mode). */
  deliveries = 0;
  bytesOut = 0;

  private ring = -1;
  private broken = false;
  private inbuf: Uint8Array = new Uint8Array(0);
  private skip = 0;
  private out: (Uint8Array | Flood)[] = [];
  private send(m: XsMsg): void {
    this.out.push(encodeMsg(m));
  }
  private watches: Watch[] = [];
  private jsWatches: { path: string; cb: (path: string) => void }[] = [];
  private txs = new Map<number, Tx>();
  private nextTx = 1;

  constructor(
    readonly domid: number,
    readonly name: string,
    readonly uuid: string,
    private readonly memory: () => ArrayBuffer,
    ports: { store: number; console: number },
  ) {
    this.populate(ports);
  }

  /** store_ring_map: the guest's ring now lives at addr. */
  attach(addr: number): void {
    this.ring = addr;
    const dv = this.view();
    // The domain builder leaves a clean ring; the guest's page may hold anything.
    new Uint8Array(dv.buffer, addr, 4096).fill(0);
  }

  get attached(): boolean {
    return this.ring >= 0;
  }

  /** Whether replies or events are queued for the guest. */
  hasOutput(): boolean {
    return this.out.length > 0;
  }

  /** Serves the ring: takes requests, answers, writes what fits, notifies. */
  pump(): void {
    if (this.ring < 0 || this.broken) return;
    const dv = this.view();
    const r = this.ring;
    let io = false;
    const reqCons = dv.getUint32(r + RING.REQ_CONS, true);
    const reqProd = dv.getUint32(r + RING.REQ_PROD, true);
    const avail = (reqProd - reqCons) >>> 0;
    if (avail > RING.SIZE) return this.fault(`request ring indices are corrupt (prod ${reqProd}, cons ${reqCons})`);
    if (avail > 0) {
      const bytes = new Uint8Array(avail);
      for (let i = 0; i < avail; i++) bytes[i] = dv.getUint8(r + RING.REQ + ((reqCons + i) & (RING.SIZE - 1)));
      dv.setUint32(r + RING.REQ_CONS, reqProd, true);
      this.inbuf = concat(this.inbuf, bytes);
      io = true;
      this.takeRequests();
    }
    const rspCons = dv.getUint32(r + RING.RSP_CONS, true);
    let rspProd = dv.getUint32(r + RING.RSP_PROD, true);
    const used = (rspProd - rspCons) >>> 0;
    if (used > RING.SIZE) return this.fault(`response ring indices are corrupt (prod ${rspProd}, cons ${rspCons})`);
    let room = RING.SIZE - used;
    if (this.trickle) room = Math.min(room, 1);
    const bytes = new Uint8Array(dv.buffer, r + RING.RSP, RING.SIZE);
    while (room > 0 && this.out.length > 0) {
      let head = this.out[0];
      if (head instanceof Flood) {
        // The next event of a flood, made now.
        const m = head.make(head.i++);
        if (--head.left <= 0) this.out.shift();
        this.out.unshift(m);
        head = m;
      }
      const n = Math.min(room, head.length);
      // At most two copies: up to the ring's end, then from its start.
      const at = rspProd & (RING.SIZE - 1);
      const first = Math.min(n, RING.SIZE - at);
      bytes.set(head.subarray(0, first), at);
      if (n > first) bytes.set(head.subarray(first, n), 0);
      rspProd = (rspProd + n) >>> 0;
      room -= n;
      if (n === head.length) this.out.shift();
      else this.out[0] = head.subarray(n);
      io = true;
    }
    const wrote = (rspProd - dv.getUint32(r + RING.RSP_PROD, true)) >>> 0;
    if (wrote > 0) {
      this.deliveries++;
      this.bytesOut += wrote;
    }
    dv.setUint32(r + RING.RSP_PROD, rspProd, true);
    if (io) this.port?.notify();
  }

  // ---- dom0's view, for backends and tests ----

  read(path: string): string | undefined {
    const n = this.tree.lookup(path);
    return n ? dec.decode(n.value) : undefined;
  }

  write(path: string, value: string): void {
    this.tree.write(path, 0, enc.encode(value));
    this.fire(path, false);
    this.runJs();
  }

  rm(path: string): void {
    if (!this.tree.lookup(path)) return;
    this.fire(path, true);
    this.tree.rm(path, 0);
    this.runJs();
  }

  setPerms(path: string, perms: string[]): void {
    this.tree.setPerms(
      path,
      0,
      perms.map((p) => parsePerm(p)!),
    );
    this.fire(path, false);
    this.runJs();
  }

  /**
   * Queues n events for the guest's watch with this token (after the output
   * already queued), for the watched path or path(i). Returns false when the
   * guest has no such watch.
   */
  flood(token: string, n: number, path?: (i: number) => string): boolean {
    const w = this.watches.find((x) => x.token === token);
    if (!w || n <= 0) return false;
    const same = this.event(w, w.path);
    this.out.push(new Flood(n, path ? (i) => this.event(w, path(i)) : () => same));
    return true;
  }

  /** Sends the output held back by hostile.hold now. */
  releaseHeld(): void {
    if (!this.held.length) return;
    this.out.push(...this.held);
    this.held = [];
    this.pump();
  }

  /** A dom0 watch: cb runs synchronously after each change at or below path. */
  watch(path: string, cb: (path: string) => void): void {
    this.jsWatches.push({ path, cb });
  }

  // ---- the protocol ----

  private takeRequests(): void {
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.inbuf.length);
        this.inbuf = this.inbuf.subarray(n);
        this.skip -= n;
        if (this.skip > 0) return;
      }
      if (this.inbuf.length < HEADER_SIZE) return;
      const dv = new DataView(this.inbuf.buffer, this.inbuf.byteOffset, HEADER_SIZE);
      const hdr = { type: dv.getUint32(0, true), reqId: dv.getUint32(4, true), txId: dv.getUint32(8, true), len: dv.getUint32(12, true) };
      if (hdr.len > PAYLOAD_MAX) {
        // Stay in step with the stream: drop the oversized payload, answer E2BIG.
        this.inbuf = this.inbuf.subarray(HEADER_SIZE);
        this.skip = hdr.len;
        this.faults.push(`request ${hdr.reqId}: payload of ${hdr.len} bytes exceeds XENSTORE_PAYLOAD_MAX`);
        this.send({ type: XS.ERROR, reqId: hdr.reqId, txId: hdr.txId, payload: strings("E2BIG") });
        continue;
      }
      if (this.inbuf.length < HEADER_SIZE + hdr.len) return;
      this.hooks.rawRequest?.(this.inbuf.slice(0, HEADER_SIZE + hdr.len));
      const payload = this.inbuf.slice(HEADER_SIZE, HEADER_SIZE + hdr.len);
      this.inbuf = this.inbuf.subarray(HEADER_SIZE + hdr.len);
      this.handle({ type: hdr.type, reqId: hdr.reqId, txId: hdr.txId, payload });
    }
  }

  private handle(req: XsMsg): void {
    const n = this.requests++;
    const f = this.hostile;
    if (f.silentFrom !== undefined && n >= f.silentFrom) {
      this.unanswered++; // a stuck daemon: the request is taken and nothing ever comes back
      return;
    }
    // A late answer goes out before the next request's.
    if (this.held.length) {
      this.out.push(...this.held);
      this.held = [];
    }
    const hold = f.hold?.includes(n) ?? false;
    const out = this.out;
    if (hold) this.out = [];
    try {
      this.answer(req);
    } finally {
      if (hold) {
        this.held = this.out as Uint8Array[];
        this.out = out;
      }
    }
  }

  private answer(req: XsMsg): void {
    this.hooks.beforeRequest?.(req, this);
    const events: Uint8Array[] = [];
    let reply: XsMsg;
    const after: Uint8Array[] = [];
    try {
      const payload = this.process(req, events, after);
      reply = { type: req.type, reqId: req.reqId, txId: req.txId, payload };
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      reply = { type: XS.ERROR, reqId: req.reqId, txId: req.txId, payload: strings(ERRNAME[e.errno] ?? "EINVAL") };
    }
    // Like cxenstored: events a change fires are queued before the change's ack.
    for (const ev of events) this.out.push(ev);
    const bytes = encodeMsg(reply);
    const raw = this.hooks.reply?.(req, bytes, this);
    this.out.push(raw ?? bytes);
    for (const ev of after) this.out.push(ev);
    this.runJs();
  }

  private process(req: XsMsg, events: Uint8Array[], after: Uint8Array[]): Uint8Array {
    const d = this.domid;
    const tx = req.txId === 0 ? undefined : this.txs.get(req.txId);
    if (req.txId !== 0 && !tx) throw new XsError(ENOENT);
    const tree = tx ? tx.tree : this.tree;
    const args = splitArgs(req.payload);
    const one = (): string => {
      // Exactly one NUL-terminated string.
      if (!args || args.length !== 1) throw new XsError(EINVAL);
      return args[0];
    };
    const note = (path: string) => {
      if (tx && !tx.seen.has(path)) tx.seen.set(path, tx.pristine.genOf(path));
    };
    const OK = strings("OK");
    switch (req.type) {
      case XS.READ: {
        const p = canonical(one(), d);
        note(p);
        return tree.get(p, d, "r").value;
      }
      case XS.WRITE: {
        const nul = req.payload.indexOf(0);
        if (nul < 0) throw new XsError(EINVAL);
        const p = canonical(dec.decode(req.payload.subarray(0, nul)), d);
        const value = req.payload.slice(nul + 1);
        note(p);
        tree.write(p, d, value);
        this.change(tx, { kind: "write", path: p, value }, events);
        return OK;
      }
      case XS.MKDIR: {
        const p = canonical(one(), d);
        note(p);
        tree.mkdir(p, d);
        this.change(tx, { kind: "mkdir", path: p }, events);
        return OK;
      }
      case XS.RM: {
        const p = canonical(one(), d);
        note(p);
        if (!tree.lookup(p)) {
          tree.get(p, d, "r"); // ENOENT, or EACCES when hidden
        }
        if (!tx) this.collect(p, true, events);
        tree.rm(p, d);
        if (tx) tx.ops.push({ kind: "rm", path: p });
        return OK;
      }
      case XS.DIRECTORY: {
        const p = canonical(one(), d);
        note(p);
        const n = tree.get(p, d, "r");
        return strings(...[...n.children.keys()].sort());
      }
      case XS.GET_PERMS: {
        const p = canonical(one(), d);
        note(p);
        return strings(...tree.get(p, d, "r").perms.map(permString));
      }
      case XS.SET_PERMS: {
        if (!args || args.length < 2) throw new XsError(EINVAL);
        const p = canonical(args[0], d);
        const perms = args.slice(1).map(parsePerm);
        if (perms.some((x) => !x)) throw new XsError(EINVAL);
        note(p);
        tree.setPerms(p, d, perms as Perm[]);
        this.change(tx, { kind: "perms", path: p, perms: perms as Perm[] }, events);
        return OK;
      }
      case XS.WATCH: {
        if (!args || args.length !== 2) throw new XsError(EINVAL);
        const [path, token] = args;
        const abs = canonical(path, d, true);
        if (this.watches.some((w) => w.path === abs && w.token === token)) throw new XsError(EEXIST);
        const w = { path: abs, token, rel: !path.startsWith("/") && !path.startsWith("@") };
        this.watches.push(w);
        after.push(this.event(w, abs)); // the initial event, after the ack
        return OK;
      }
      case XS.UNWATCH: {
        if (!args || args.length !== 2) throw new XsError(EINVAL);
        const abs = canonical(args[0], d, true);
        const i = this.watches.findIndex((w) => w.path === abs && w.token === args[1]);
        if (i < 0) throw new XsError(ENOENT);
        this.watches.splice(i, 1);
        return OK;
      }
      case XS.RESET_WATCHES:
        this.watches = [];
        return OK;
      case XS.TRANSACTION_START: {
        if (one() !== "") throw new XsError(EINVAL);
        if (req.txId !== 0) throw new XsError(EBUSY);
        const id = this.nextTx++;
        this.txs.set(id, {
          tree: new XsTree(this.tree.root.clone()),
          pristine: new XsTree(this.tree.root.clone()),
          seen: new Map(),
          ops: [],
        });
        return strings(String(id));
      }
      case XS.TRANSACTION_END: {
        const a = one();
        if (!tx || (a !== "T" && a !== "F")) throw new XsError(EINVAL);
        this.txs.delete(req.txId);
        if (a === "F") return OK;
        for (const [p, g] of tx.seen) if (this.tree.genOf(p) !== g) throw new XsError(EAGAIN);
        for (const op of tx.ops) this.apply(op, events);
        return OK;
      }
      case XS.GET_DOMAIN_PATH: {
        const id = one();
        if (!/^\d+$/.test(id)) throw new XsError(EINVAL);
        return strings(`/local/domain/${id}`);
      }
      case XS.INTRODUCE:
      case XS.RELEASE:
      case XS.RESUME:
      case XS.SET_TARGET:
      case XS.IS_DOMAIN_INTRODUCED:
      case XS.CONTROL:
        throw new XsError(EACCES); // privileged operations: dom0 only
      case XS.DIRECTORY_PART:
        throw new XsError(ENOSYS);
      default:
        throw new XsError(EINVAL); // XS_WATCH_EVENT, XS_ERROR or an unknown type from a client
    }
  }

  // Records a change: applied now (and watches fired) or at commit.
  private change(tx: Tx | undefined, op: Op, events: Uint8Array[]): void {
    if (tx) tx.ops.push(op);
    else this.collect(op.path, false, events);
  }

  private apply(op: Op, events: Uint8Array[]): void {
    const d = this.domid;
    if (op.kind === "write") this.tree.write(op.path, d, op.value);
    else if (op.kind === "mkdir") this.tree.mkdir(op.path, d);
    else if (op.kind === "perms") this.tree.setPerms(op.path, d, op.perms);
    else if (this.tree.lookup(op.path)) {
      this.collect(op.path, true, events);
      this.tree.rm(op.path, d);
      return;
    }
    this.collect(op.path, false, events);
  }

  // Queues the guest's watch events for a change at path (before a removal for rm), and runs dom0 watches.
  private collect(path: string, removed: boolean, events: Uint8Array[]): void {
    const readable = (p: string) => {
      const n = this.tree.lookup(p) ?? this.tree.nearest(p);
      return XsTree.can(n, this.domid, "r");
    };
    for (const w of this.watches) {
      if (w.path.startsWith("@")) continue;
      if (under(path, w.path) && readable(path)) events.push(this.event(w, path));
      else if (removed && under(w.path, path) && w.path !== path && readable(w.path)) events.push(this.event(w, w.path));
    }
    for (const j of [...this.jsWatches]) if (under(path, j.path) || (removed && under(j.path, path))) this.pendingJs.push(() => j.cb(path));
  }

  private fire(path: string, removed: boolean): void {
    const events: Uint8Array[] = [];
    this.collect(path, removed, events);
    this.out.push(...events);
  }

  // dom0 watch callbacks run once the change that fired them is complete, never nested.
  private pendingJs: (() => void)[] = [];
  private runningJs = false;
  private runJs(): void {
    if (this.runningJs) return;
    this.runningJs = true;
    try {
      while (this.pendingJs.length) this.pendingJs.shift()!();
    } finally {
      this.runningJs = false;
    }
  }

  private event(w: Watch, path: string): Uint8Array {
    const prefix = `/local/domain/${this.domid}/`;
    const shown = w.rel && path.startsWith(prefix) ? path.slice(prefix.length) : path;
    return encodeMsg({ type: XS.WATCH_EVENT, reqId: 0, txId: 0, payload: strings(shown, w.token) });
  }

  private fault(what: string): void {
    this.broken = true;
    this.faults.push(what);
    this.view().setUint32(this.ring + RING.ERROR, ERROR_RINGIDX, true);
    throw new GuestFault(`xenstored: ${what}; the connection is closed (XENSTORE_ERROR_RINGIDX)`);
  }

  private view(): DataView {
    return new DataView(this.memory());
  }

  // The tree `xl create` writes for a domU (the keys a guest commonly reads).
  private populate(ports: { store: number; console: number }): void {
    const d = this.domid;
    const put = (path: string, value: string, perms: string[]) => {
      this.tree.write(path, 0, enc.encode(value));
      this.tree.lookup(path)!.perms = perms.map((p) => parsePerm(p)!);
    };
    const ro = ["n0", `r${d}`];
    put("/local", "", ["r0"]);
    put("/local/domain", "", ["r0"]);
    put("/local/domain/0", "", ["n0"]);
    put("/local/domain/0/name", "Domain-0", ["n0"]);
    put("/local/domain/0/domid", "0", ["n0"]);
    put("/local/domain/0/backend", "", ["n0"]);
    put("/vm", "", ["n0"]);
    put(`/vm/${this.uuid}`, "", ro);
    put(`/vm/${this.uuid}/name`, this.name, ro);
    put(`/vm/${this.uuid}/uuid`, this.uuid, ro);
    const base = `/local/domain/${d}`;
    put(base, "", ro);
    put(`${base}/name`, this.name, ro);
    put(`${base}/domid`, String(d), ro);
    put(`${base}/vm`, `/vm/${this.uuid}`, ro);
    put(`${base}/memory`, "", ro);
    put(`${base}/memory/target`, "32768", ro);
    put(`${base}/store`, "", ro);
    put(`${base}/store/port`, String(ports.store), ro);
    put(`${base}/store/ring-ref`, "1", ro);
    put(`${base}/console`, "", ro);
    put(`${base}/console/port`, String(ports.console), ro);
    put(`${base}/console/ring-ref`, "2", ro);
    put(`${base}/console/type`, "xenconsoled", ro);
    put(`${base}/device`, "", ro);
    put(`${base}/control`, "", ro);
    put(`${base}/control/shutdown`, "", ["n0", `b${d}`]);
    put(`${base}/data`, "", [`n${d}`]);
  }
}

/** Whether path is at or below dir. */
function under(path: string, dir: string): boolean {
  return path === dir || dir === "/" || path.startsWith(dir + "/");
}

/** NUL-terminated strings; null when the payload does not end with a NUL. */
function splitArgs(p: Uint8Array): string[] | null {
  if (p.length === 0 || p[p.length - 1] !== 0) return null;
  return dec.decode(p.subarray(0, p.length - 1)).split("\0");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
