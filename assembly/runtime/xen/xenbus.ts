// The xenbus frontend handshake (xen/include/public/io/xenbus.h), independent
// of any device: find the backend, wait for it to be ready, read its feature
// keys with defaults, publish our ring refs and event channel, and follow both
// states to Connected, then to Closed.
//
//   frontend (us)            backend (dom0)
//   Initialising ──────────▶ InitWait          backend publishes features
//   write ring-ref, port,
//   Initialised (one tx) ──▶ Connected         backend maps the ring
//   Connected
//   Closing ───────────────▶ Closing/Closed
//   Closed
import { AllSettled, Future, Task, Join, spawn } from "../sched";
import { TxBody, Watch, XsReply, Xenstore } from "./xenstore";
import * as abi from "../abi";

/** enum xenbus_state (io/xenbus.h). */
export const STATE_UNKNOWN: i32 = 0;
export const STATE_INITIALISING: i32 = 1;
export const STATE_INIT_WAIT: i32 = 2;
export const STATE_INITIALISED: i32 = 3;
export const STATE_CONNECTED: i32 = 4;
export const STATE_CLOSING: i32 = 5;
export const STATE_CLOSED: i32 = 6;

/** The xl config line that creates a backend for each device type (for error messages). */
function configLine(type: string): string {
  if (type == "vbd") return "disk";
  if (type == "vif") return "vif";
  if (type == "console") return "channel or console";
  return type;
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
    const last = fe.xs.write(fe.path + "/state", STATE_INITIALISED.toString(), this.tx);
    reqs.push(last);
    this.req = last;
    this.await(new Join(reqs));
  }
}

/** Runs the connect handshake; rejects with a message naming the device and what to check. */
class Connect extends Task {
  stage: i32 = 0;
  backendReq: XsReply | null = null;
  stateReq: XsReply | null = null;
  featureReqs: Array<XsReply> = new Array<XsReply>();
  constructor(public fe: Frontend) {
    super();
  }

  step(): void {
    const fe = this.fe;
    const a = this.awaited;
    if (this.stage == 0) {
      this.stage = 1;
      this.await((this.backendReq = fe.xs.read(fe.path + "/backend")));
    } else if (this.stage == 1) {
      const r = this.backendReq!;
      if (!r.ok) {
        if (r.errno == abi.ENOENT || r.errno == abi.EACCES)
          return this.bail(fe.path + ": no backend — is there a " + configLine(fe.type) + " line in the xl config?");
        return this.bail(fe.path + ": " + r.error);
      }
      fe.backend = r.text();
      fe.watch = fe.xs.watch(fe.backend + "/state", fe.path);
      this.stage = 2;
      this.await(fe.xs.write(fe.path + "/state", STATE_INITIALISING.toString()));
    } else if (this.stage == 2 || this.stage == 5) {
      // Waiting for a backend state: each watch event means "read it again".
      if (a && a.failed) return this.bail(fe.path + ": " + a.error);
      if (a === this.stateReq) {
        const r = this.stateReq!;
        const s = r.ok ? I32.parseInt(r.text()) : STATE_UNKNOWN;
        fe.backendState = s;
        const want = this.stage == 2 ? STATE_INIT_WAIT : STATE_CONNECTED;
        if (s == STATE_CLOSING || s == STATE_CLOSED)
          return this.bail(fe.path + ": the backend " + fe.backend + " is closing (state " + s.toString() + ")");
        if (s >= want) return this.advance();
        this.await(fe.watch!.next());
        return;
      }
      if (a === null || a instanceof XsReply) {
        // Our state write is done (or first entry): wait for the watch, then read.
        this.await(fe.watch!.next());
        return;
      }
      this.await((this.stateReq = fe.xs.read(fe.backend + "/state")));
    } else if (this.stage == 3) {
      for (let i = 0; i < this.featureReqs.length; i++) {
        const r = this.featureReqs[i];
        if (r.ok) fe.features[i].value = r.text(); // missing optional keys keep their defaults
        else if (r.errno != abi.ENOENT) return this.bail(fe.path + ": " + r.error);
      }
      this.stage = 4;
      this.await(fe.xs.transaction(new Publish(fe)));
    } else if (this.stage == 4) {
      if (a!.failed) return this.bail(fe.path + ": " + a!.error);
      this.stage = 5;
      this.await((this.stateReq = fe.xs.read(fe.backend + "/state")));
    } else if (this.stage == 6) {
      if (a!.failed) return this.bail(fe.path + ": " + a!.error);
      fe.state = STATE_CONNECTED;
      this.finish();
    }
  }

  // Fails the connect and drops the backend-state watch, so a retry starts clean.
  private bail(msg: string): void {
    const fe = this.fe;
    const w = fe.watch;
    if (w) fe.xs.unwatch(w);
    fe.watch = null;
    this.fail(msg);
  }

  private advance(): void {
    const fe = this.fe;
    if (this.stage == 2) {
      this.stage = 3;
      const reqs = new Array<Future>();
      for (let i = 0; i < fe.features.length; i++) {
        const r = fe.xs.read(fe.backend + "/" + fe.features[i].name);
        this.featureReqs.push(r);
        reqs.push(r);
      }
      // Join rejects at the first failure; stage 3 looks at each request instead.
      this.await(new AllSettled(reqs));
    } else {
      this.stage = 6;
      this.await(fe.xs.write(fe.path + "/state", STATE_CONNECTED.toString()));
    }
  }
}

/** Closing: Closing, wait for the backend to close, then Closed. */
class Close extends Task {
  stage: i32 = 0;
  stateReq: XsReply | null = null;
  constructor(public fe: Frontend) {
    super();
  }
  step(): void {
    const fe = this.fe;
    const a = this.awaited;
    if (this.stage == 0) {
      this.stage = 1;
      this.await(fe.xs.write(fe.path + "/state", STATE_CLOSING.toString()));
    } else if (this.stage == 1) {
      if (a === this.stateReq && this.stateReq) {
        const s = this.stateReq!.ok ? I32.parseInt(this.stateReq!.text()) : STATE_CLOSED;
        fe.backendState = s;
        if (s >= STATE_CLOSING || s == STATE_UNKNOWN) {
          this.stage = 2;
          this.await(fe.xs.write(fe.path + "/state", STATE_CLOSED.toString()));
        } else this.await(fe.watch!.next());
        return;
      }
      if (a && a.failed) return this.fail(fe.path + ": " + a.error);
      this.await((this.stateReq = fe.xs.read(fe.backend + "/state")));
    } else {
      fe.state = STATE_CLOSED;
      const w = fe.watch;
      if (w) fe.xs.unwatch(w);
      fe.watch = null;
      if (a!.failed) this.fail(fe.path + ": " + a!.error);
      else this.finish();
    }
  }
}

/** A device's frontend: `device/<type>/<id>` under our domain's xenstore home. */
export class Frontend {
  readonly path: string;
  backend: string = "";
  state: i32 = STATE_UNKNOWN;
  backendState: i32 = STATE_UNKNOWN;
  watch: Watch | null = null;
  /** Backend feature keys to read, with their defaults; connect() fills in the values. */
  features: Array<Key> = new Array<Key>();
  /** Keys to publish with state Initialised (ring-ref, event-channel, protocol ...). */
  writes: Array<Key> = new Array<Key>();

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
    return spawnTask(new Connect(this));
  }

  close(): Future {
    return spawnTask(new Close(this));
  }
}

function spawnTask(t: Task): Task {
  return spawn<Task>(t);
}
