// Event channels (ABI.md §8, xen/include/public/event_channel.h): ports the
// scheduler dispatches. An event that arrives while nobody waits is latched on
// the Channel, so the next next() resolves at once: no lost wakeups, whatever
// the order of "check the ring" and "wait for the event".
import * as abi from "../abi";
import { Future, setPoller } from "../sched";

/** Runs in the event loop when its channel fires (a device's interrupt handler). */
export abstract class EventHandler {
  abstract onEvent(ch: Channel): void;
}

/** A wait for the next event on a channel; cancelling it stops waiting. */
class EventWait extends Future {
  constructor(public ch: Channel) {
    super();
  }
  protected onCancel(): void {
    const i = this.ch.waits.indexOf(this);
    if (i >= 0) this.ch.waits.splice(i, 1);
  }
}

export class Channel {
  /** Events latched while no one waited. */
  latched: bool = false;
  /** Events received since binding. */
  count: u64 = 0;
  handler: EventHandler | null = null;
  waits: Array<EventWait> = new Array<EventWait>();
  closed: bool = false;

  constructor(public port: i32) {}

  /** Resolves at the next event (at once if one arrived since the last wait). */
  next(): Future {
    const w = new EventWait(this);
    if (this.latched) {
      this.latched = false;
      w.resolve();
    } else this.waits.push(w);
    return w;
  }

  /** Tells the other end; returns 0 or -errno. */
  notify(): i32 {
    return abi.evtchn_notify(this.port);
  }

  mask(): i32 {
    return abi.evtchn_mask(this.port);
  }

  /** Unmasks; an event that became pending while masked is delivered by the next poll. */
  unmask(): i32 {
    return abi.evtchn_unmask(this.port);
  }

  close(): i32 {
    if (this.closed) return 0;
    this.closed = true;
    channels.delete(this.port);
    const ws = this.waits;
    this.waits = new Array<EventWait>();
    for (let i = 0; i < ws.length; i++) ws[i].reject("event channel " + this.port.toString() + " closed");
    return abi.evtchn_close(this.port);
  }

  fire(): void {
    this.count++;
    const h = this.handler;
    if (h) h.onEvent(this);
    if (this.waits.length == 0) {
      if (!h) this.latched = true; // a handler has taken the event; otherwise keep it for next()
      return;
    }
    const ws = this.waits;
    this.waits = new Array<EventWait>();
    for (let i = 0; i < ws.length; i++) ws[i].resolve();
  }
}

const channels = new Map<i32, Channel>();
const POLL_MAX: i32 = 64;
const pollBuf = memory.data(POLL_MAX * 4);
/** Events for ports nobody bound here (a host bug or a stale port). */
export let stray: u64 = 0;

/** Takes the pending ports from the host and fires their channels (the scheduler's poller). */
export function dispatch(): void {
  for (;;) {
    const n = abi.evtchn_poll(pollBuf, POLL_MAX * 4);
    if (n <= 0) return;
    for (let i = 0; i < min(n, POLL_MAX); i++) {
      const port = load<i32>(pollBuf + (<usize>i << 2));
      if (channels.has(port)) channels.get(port).fire();
      else stray++;
    }
    if (n < POLL_MAX) return;
  }
}

function register(port: i32): Channel {
  setPoller(dispatch);
  const ch = new Channel(port);
  channels.set(port, ch);
  return ch;
}

/** A port already bound by the host (xenstore, console). */
export function bound(port: i32): Channel {
  if (channels.has(port)) return channels.get(port);
  return register(port);
}

/** Result of an allocation: the channel, or the errno. */
export class Bind {
  constructor(
    public channel: Channel | null,
    public errno: i32,
  ) {}
}

/** EVTCHNOP_alloc_unbound: a port `remoteDomid` may bind to. */
export function allocUnbound(remoteDomid: i32): Bind {
  const p = abi.evtchn_alloc_unbound(remoteDomid);
  return p < 0 ? new Bind(null, -p) : new Bind(register(p), 0);
}

/** EVTCHNOP_bind_interdomain: connects to a port the remote domain allocated for us. */
export function bindInterdomain(remoteDomid: i32, remotePort: i32): Bind {
  const p = abi.evtchn_bind_interdomain(remoteDomid, remotePort);
  return p < 0 ? new Bind(null, -p) : new Bind(register(p), 0);
}
