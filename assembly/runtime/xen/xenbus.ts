// The xenbus frontend handshake (xen/include/public/io/xenbus.h), independent
// of any device: find the backend, wait for it to be ready, read its feature
// keys with defaults, publish our ring refs and event channel, and follow both
// states to Connected, then to Closed.
//
//   frontend (us)            backend (dom0)
//   Initialising ──────────▶ InitWait          backend publishes features
//   write ring-ref, port,
//   Initialised (one tx) ──▶ Connected         backend maps the ring
//   (netfront publishes Connected instead: xen-netback connects on the frontend's Connected)
//   Connected                                  (watched: leaving Connected fails the device)
//   Closing ───────────────▶ Closing/Closed
//   Closed
//
// The backend is another domain, so its state is hostile input: it must be a
// XenbusState written exactly as "1".."6", anything else refuses the device
// with a message naming the key and its value. Every wait on it has a deadline
// (per Frontend, overridable): CONNECT_TIMEOUT_NS (30 s) for each state the
// handshake waits for (InitWait, then Connected), as long as Linux's
// xenbus_probe_frontend.c waits for a device to connect; CLOSE_TIMEOUT_NS (5 s)
// for Closing, as long as xenbus_dev_shutdown() waits. Each xenstore request
// has its own deadline too (xenstore.ts). A backend that misses a deadline gets
// our Closed (so a slow one lets go of the ring) and the wait fails, naming the
// device, the state waited for, the state seen and what to check.
//
// Once Connected, the backend's state stays watched (monitor()): Closing,
// Closed, any other state or the node vanishing rejects the monitor, and the
// device driver fails the device with that reason (blkfront-xs.ts).
import { AllSettled, Future, Join, Sleep, State, Task, sleep, spawn } from "../sched";
import { TxBody, Watch, WatchEvent, XsReply, Xenstore, seconds } from "./xenstore";
import * as abi from "../abi";

/** enum xenbus_state (io/xenbus.h). */
export const STATE_UNKNOWN: i32 = 0;
export const STATE_INITIALISING: i32 = 1;
export const STATE_INIT_WAIT: i32 = 2;
export const STATE_INITIALISED: i32 = 3;
export const STATE_CONNECTED: i32 = 4;
export const STATE_CLOSING: i32 = 5;
export const STATE_CLOSED: i32 = 6;
/** Not a XenbusState: the backend's state node does not exist. */
export const STATE_ABSENT: i32 = -1;

const NOT_READ: i32 = -2;

/** How long the handshake waits for each backend state (InitWait, then Connected). */
export const CONNECT_TIMEOUT_NS: i64 = 30_000_000_000;
/** How long close() waits for the backend to acknowledge Closing. */
export const CLOSE_TIMEOUT_NS: i64 = 5_000_000_000;

/** A backend's state value, parsed exactly: "1".."6" give 1..6, anything else -1. */
export function parseState(v: string): i32 {
  if (v.length != 1) return -1;
  const c = v.charCodeAt(0);
  return c >= 49 && c <= 54 ? c - 48 : -1;
}

/** "Connected (state 4)", for messages. */
export function describeState(s: i32): string {
  if (s == STATE_ABSENT) return "without a state node";
  const names = ["Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed"];
  return (s >= 0 && s < names.length ? names[s] : "?") + " (state " + s.toString() + ")";
}

/** The xl config line that creates a backend for each device type (for error messages). */
function configLine(type: string): string {
  if (type == "vbd") return "disk";
  if (type == "vif") return "vif";
  if (type == "console") return "channel or console";
  return type;
}

/** The backend driver of each device type (for error messages). */
function driver(type: string): string {
  if (type == "vbd") return "xen-blkback";
  if (type == "vif") return "xen-netback";
  if (type == "console") return "xenconsoled";
  return "its " + type + " backend";
}

/** A key/value pair: a feature read with a default, or a key the frontend writes. */
export class Key {
  constructor(
    public name: string,
    public value: string,
  ) {}
}

// Publishes the frontend's keys and state Initialised in one transaction.
class Publish extends TxBody {
  req: XsReply | null = null;
  constructor(public fe: Frontend) {
    super();
  }
  restart(): void {
    this.req = null;
  }
  step(): void {
    if (this.req) {
      if (!this.req!.ok) this.fail(this.req!.error);
      else this.finish();
      return;
    }
    const fe = this.fe;
    const reqs = new Array<Future>();
    for (let i = 0; i < fe.writes.length; i++) reqs.push(fe.xs.write(fe.path + "/" + fe.writes[i].name, fe.writes[i].value, this.tx));
    const last = fe.xs.write(fe.path + "/state", fe.publishState.toString(), this.tx);
    reqs.push(last);
    this.req = last;
    this.await(new Join(reqs));
  }
}

/** What a StateWait waits for. */
export enum Until {
  /** InitWait, Initialised or Connected (the handshake's first wait). */
  InitWait = 0,
  Connected = 1,
  /** Closing, Closed, or the node gone. */
  Closed = 2,
  /** Never satisfied: settles (rejects) only when the backend leaves Connected. */
  Leaves = 3,
}

/**
 * Waits for the backend's state: reads it, then again at each watch event,
 * until it is what `until` asks for, or the deadline (0: none) passes. Rejects
 * with `why` (the reason without the device's name) and error = path: why.
 */
export class StateWait extends Task {
  req: XsReply | null = null;
  timer: Sleep | null = null;
  why: string = "";
  /** The state last read in this wait (NOT_READ before the first). */
  seen: i32 = NOT_READ;
  constructor(
    public fe: Frontend,
    public until: Until,
    public timeoutNs: i64,
  ) {
    super();
    if (timeoutNs > 0) {
      const t = sleep(timeoutNs);
      this.timer = t;
      t.addWaiter(this);
    }
  }

  step(): void {
    const fe = this.fe;
    const a = this.awaited;
    if (a === null || a instanceof WatchEvent) {
      // First step, or "something changed": read the state (again).
      this.await((this.req = fe.xs.read(fe.backend + "/state")));
      return;
    }
    const r = this.req!;
    let s = STATE_ABSENT;
    if (r.ok) {
      s = parseState(r.text());
      if (s < 0) return this.stop("backend key " + fe.backend + "/state = \"" + r.text() + "\" is not a XenbusState (1 to 6); the device is refused");
    } else if (r.errno != abi.ENOENT) {
      // xenstored failed us: a monitor waits for the next event, a handshake fails.
      if (this.until == Until.Leaves) return this.next();
      return this.stop(r.error);
    }
    fe.backendState = s;
    this.seen = s;
    const closing = s == STATE_CLOSING || s == STATE_CLOSED;
    const u = this.until;
    if (u == Until.InitWait || u == Until.Connected) {
      if (closing) return this.stop("the backend " + fe.backend + " is closing (state " + s.toString() + ")");
      if (s == STATE_CONNECTED || (u == Until.InitWait && s >= STATE_INIT_WAIT)) return this.finish(s);
    } else if (u == Until.Closed) {
      if (closing || s == STATE_ABSENT) return this.finish(s);
    } else if (s != STATE_CONNECTED) {
      return this.stop("the backend " + fe.backend + " left Connected: " + (s == STATE_ABSENT ? "its state node is gone" : "it is " + describeState(s)));
    }
    this.next();
  }

  private next(): void {
    this.await(this.fe.watch!.next());
  }

  private stop(why: string): void {
    this.why = why;
    this.fail(this.fe.path + ": " + why);
  }

  // The deadline's timer wakes the task itself.
  wake(from: Future): void {
    if (from !== this.timer) return super.wake(from);
    this.timer = null;
    if (!from.ok || !this.pending) return;
    const fe = this.fe;
    const s = this.seen;
    const seen = s == NOT_READ ? "its state could not be read" : s == STATE_ABSENT ? "it has no state node" : "it is " + describeState(s);
    let why = "the backend " + fe.backend + " ";
    if (this.until == Until.InitWait)
      why += "did not reach InitWait in " + seconds(this.timeoutNs) + ", " + seen + ": check that the backend domain runs " +
        driver(fe.type) + ", and read its kernel log";
    else if (this.until == Until.Connected)
      why += "did not reach Connected in " + seconds(this.timeoutNs) + ", " + seen + ": it may have refused our ring; read the backend domain's kernel log";
    else why += "did not close in " + seconds(this.timeoutNs) + ", " + seen + ": it may still map the ring; check the backend domain";
    // Stop what we were waiting on (a watch event or a read), then fail.
    const a = this.awaited;
    this.awaited = null;
    if (a) {
      a.removeWaiter(this);
      a.cancel();
    }
    this.stop(why);
  }

  protected settle(state: State, error: string): void {
    const t = this.timer;
    this.timer = null;
    if (t) t.cancel();
    super.settle(state, error);
  }
}

/** The stages of Handshake, in the order they run; each handles what the one before it awaited. */
enum HandshakeStage {
  /** Read device/<type>/<id>/backend. */
  Start,
  /** Watch the backend's state; write our state Initialising. */
  BackendPath,
  /** Wait (StateWait) for the backend's InitWait. */
  Initialising,
  /** InitWait: read the backend's feature keys. */
  InitWait,
  /** Publish our keys with state Initialised, in one transaction. */
  Features,
  /** Wait (StateWait) for the backend's Connected. */
  Initialised,
  /** The backend is Connected: write our state Connected. */
  BackendConnected,
  /** Connected: start the monitor (StateWait until the backend leaves Connected). */
  Connected,
}

/** Runs the connect handshake; rejects with a message naming the device and what to check. */
class Handshake extends Task {
  stage: HandshakeStage = HandshakeStage.Start;
  backendReq: XsReply | null = null;
  featureReqs: Array<XsReply> = new Array<XsReply>();
  constructor(public fe: Frontend) {
    super();
  }

  step(): void {
    const fe = this.fe;
    const a = this.awaited;
    switch (this.stage) {
      case HandshakeStage.Start: {
        this.stage = HandshakeStage.BackendPath;
        this.await((this.backendReq = fe.xs.read(fe.path + "/backend")));
        return;
      }
      case HandshakeStage.BackendPath: {
        const r = this.backendReq!;
        if (!r.ok) {
          if (r.errno == abi.ENOENT || r.errno == abi.EACCES)
            return this.bail(fe.path + ": no backend — is there a " + configLine(fe.type) + " line in the xl config?");
          return this.bail(fe.path + ": " + r.error);
        }
        fe.backend = r.text();
        fe.watch = fe.xs.watch(fe.backend + "/state", fe.path);
        this.stage = HandshakeStage.Initialising;
        this.await(fe.xs.write(fe.path + "/state", STATE_INITIALISING.toString()));
        return;
      }
      case HandshakeStage.Initialising: {
        if (a!.failed) return this.bail(fe.path + ": " + a!.error);
        this.stage = HandshakeStage.InitWait;
        this.await(spawn(new StateWait(fe, Until.InitWait, fe.connectTimeoutNs)));
        return;
      }
      case HandshakeStage.InitWait: {
        if (a!.failed) return this.bail(a!.error, true);
        this.stage = HandshakeStage.Features;
        const reqs = new Array<Future>();
        for (let i = 0; i < fe.features.length; i++) {
          const r = fe.xs.read(fe.backend + "/" + fe.features[i].name);
          this.featureReqs.push(r);
          reqs.push(r);
        }
        // Join rejects at the first failure; the next stage looks at each request instead.
        this.await(new AllSettled(reqs));
        return;
      }
      case HandshakeStage.Features: {
        for (let i = 0; i < this.featureReqs.length; i++) {
          const r = this.featureReqs[i];
          if (r.ok) fe.features[i].value = r.text(); // missing optional keys keep their defaults
          else if (r.errno != abi.ENOENT) return this.bail(fe.path + ": " + r.error, true);
        }
        const c = fe.check;
        const refused = c ? c.check(fe) : "";
        if (refused.length > 0) return this.bail(refused, true);
        this.stage = HandshakeStage.Initialised;
        this.await(fe.xs.transaction(new Publish(fe)));
        return;
      }
      case HandshakeStage.Initialised: {
        if (a!.failed) return this.bail(fe.path + ": " + a!.error, true);
        this.stage = HandshakeStage.BackendConnected;
        this.await(spawn(new StateWait(fe, Until.Connected, fe.connectTimeoutNs)));
        return;
      }
      case HandshakeStage.BackendConnected: {
        if (a!.failed) return this.bail(a!.error, true);
        this.stage = HandshakeStage.Connected;
        if (fe.publishState == STATE_CONNECTED) {
          // Published with the keys already (netfront): nothing to write.
          const done = new Future();
          done.resolve();
          this.await(done);
        } else this.await(fe.xs.write(fe.path + "/state", STATE_CONNECTED.toString()));
        return;
      }
      case HandshakeStage.Connected: {
        if (a!.failed) return this.bail(fe.path + ": " + a!.error, true);
        fe.state = STATE_CONNECTED;
        fe.monitor = spawn(new StateWait(fe, Until.Leaves, 0));
        this.finish();
        return;
      }
    }
  }

  // Fails the connect and drops the backend-state watch, so a retry starts clean;
  // once we are on the bus, our Closed tells the backend to let go (not waited for).
  private bail(msg: string, onBus: bool = false): void {
    const fe = this.fe;
    const w = fe.watch;
    if (w) fe.xs.unwatch(w);
    fe.watch = null;
    if (onBus) {
      fe.xs.write(fe.path + "/state", STATE_CLOSED.toString());
      fe.state = STATE_CLOSED;
    }
    this.fail(msg);
  }
}

/** The stages of Close, in the order they run. */
enum CloseStage {
  /** Stop the monitor; write our state Closing. */
  Start,
  /** Wait (StateWait, CLOSE_TIMEOUT_NS) for the backend to close. */
  Closing,
  /** The backend closed, or the wait failed: write our state Closed in any case. */
  BackendClosed,
  /** Closed: drop the watch; report the first failure. */
  Closed,
}

/** Closing: Closing, wait (CLOSE_TIMEOUT_NS) for the backend to close, then Closed in any case. */
class Close extends Task {
  stage: CloseStage = CloseStage.Start;
  closeError: string = "";
  constructor(public fe: Frontend) {
    super();
  }
  step(): void {
    const fe = this.fe;
    const a = this.awaited;
    switch (this.stage) {
      case CloseStage.Start: {
        // Leaving Connected is ours now: the monitor must not take it for a failure.
        const m = fe.monitor;
        fe.monitor = null;
        if (m) m.cancel("the device is closing");
        this.stage = CloseStage.Closing;
        this.await(fe.xs.write(fe.path + "/state", STATE_CLOSING.toString()));
        return;
      }
      case CloseStage.Closing: {
        if (a!.failed || fe.backend == "") {
          if (a!.failed) this.closeError = fe.path + ": " + a!.error;
          return this.closed();
        }
        if (!fe.watch) fe.watch = fe.xs.watch(fe.backend + "/state", fe.path);
        this.stage = CloseStage.BackendClosed;
        this.await(spawn(new StateWait(fe, Until.Closed, fe.closeTimeoutNs)));
        return;
      }
      case CloseStage.BackendClosed: {
        if (a!.failed) this.closeError = a!.error;
        this.closed();
        return;
      }
      case CloseStage.Closed: {
        fe.state = STATE_CLOSED;
        const w = fe.watch;
        if (w) fe.xs.unwatch(w);
        fe.watch = null;
        if (this.closeError.length > 0) this.fail(this.closeError);
        else if (a!.failed) this.fail(fe.path + ": " + a!.error);
        else this.finish();
        return;
      }
    }
  }

  private closed(): void {
    this.stage = CloseStage.Closed;
    this.await(this.fe.xs.write(this.fe.path + "/state", STATE_CLOSED.toString()));
  }
}

/** A device's own check of the backend's feature keys at InitWait, before anything is published. */
export abstract class FeatureCheck {
  /** "" to go on, or why the device is refused (the whole message): the handshake then closes. */
  abstract check(fe: Frontend): string;
}

/** A device's frontend: `device/<type>/<id>` under our domain's xenstore home. */
export class Frontend {
  readonly path: string;
  backend: string = "";
  state: i32 = STATE_UNKNOWN;
  backendState: i32 = STATE_UNKNOWN;
  watch: Watch | null = null;
  /** While Connected: rejects (StateWait.why) when the backend leaves Connected; cancelled by close(). */
  monitor: StateWait | null = null;
  /** Feature keys to read, with their defaults; connect() fills in the values. */
  features: Array<Key> = new Array<Key>();
  /** Keys to publish with state Initialised (ring-ref, event-channel, protocol ...). */
  writes: Array<Key> = new Array<Key>();
  /** The state published with the keys: Initialised, or Connected for a backend that connects on it (xen-netback). */
  publishState: i32 = STATE_INITIALISED;
  /** Refuses the backend's features before anything is published (null: none). */
  check: FeatureCheck | null = null;
  /** Deadline of each backend state the handshake waits for, and of the close. */
  connectTimeoutNs: i64 = CONNECT_TIMEOUT_NS;
  closeTimeoutNs: i64 = CLOSE_TIMEOUT_NS;

  constructor(
    public xs: Xenstore,
    public type: string,
    public id: string,
  ) {
    this.path = "device/" + type + "/" + id;
  }

  /** Asks for a backend feature key; `def` is used when the backend does not write it. */
  feature(name: string, def: string): Frontend {
    this.features.push(new Key(name, def));
    return this;
  }

  /** A key to publish before Initialised. */
  publish(name: string, value: string): Frontend {
    this.writes.push(new Key(name, value));
    return this;
  }

  /** The value of a feature key after connect() (its default if the backend has none). */
  featureValue(name: string): string {
    for (let i = 0; i < this.features.length; i++) if (this.features[i].name == name) return this.features[i].value;
    return "";
  }

  connect(): Future {
    return spawnTask(new Handshake(this));
  }

  close(): Future {
    return spawnTask(new Close(this));
  }
}

function spawnTask(t: Task): Task {
  return spawn<Task>(t);
}
