// Emulated event channels (xen/include/public/event_channel.h), the guest's ports
// and the dom0 ends JS backends hold. Every backend runs synchronously inside the
// guest's import calls, so a notification to dom0 calls the backend at once, and a
// backend's notification only sets the guest port's pending bit (no upcalls: the
// guest sees it through block() and evtchn_poll()).
import { DOM0, DOMID_SELF, EINVAL, ENOSPC, ESRCH } from "./errno.ts";

/** Ports of the 2-level ABI on x86-64: 64 × 64 (EVTCHN_2L_NR_CHANNELS). */
export const NR_PORTS = 4096;

type State = "unbound" | "interdomain" | "closed";

interface Port {
  state: State;
  /** The domain allowed to bind (unbound) or bound to (interdomain). */
  remote: number;
  /** Peer guest port for a loopback binding. */
  peer?: number;
  /** The dom0 side for a binding to a JS backend. */
  backend?: BackendEnd;
  masked: boolean;
  pending: boolean;
}

/** A backend's end of a channel: notify() raises the guest's port. */
export class BackendEnd {
  closed = false;
  constructor(
    private readonly evtchn: EventChannels,
    readonly guestPort: number,
    readonly onNotify: () => void,
  ) {}

  notify(): void {
    if (!this.closed) this.evtchn.raise(this.guestPort);
  }
}

export class EventChannels {
  private readonly ports = new Map<number, Port>();
  /** Notifications the guest sent, per port (tests assert on notification hold-off). */
  readonly sent = new Map<number, number>();

  constructor(private readonly domid: number) {}

  // ---- the guest's side (ABI §8) ----

  allocUnbound(remote: number): number {
    const r = this.remoteId(remote);
    if (r < 0) return r;
    return this.newPort({ state: "unbound", remote: r, masked: false, pending: false });
  }

  /** Binds to a dom0 port a backend offered (offerPort) or to our own unbound port. */
  bindInterdomain(remote: number, remotePort: number): number {
    const r = this.remoteId(remote);
    if (r < 0) return r;
    if (r === this.domid) {
      const u = this.ports.get(remotePort);
      if (!u || u.state !== "unbound" || u.remote !== this.domid) return -EINVAL;
      const p = this.newPort({ state: "interdomain", remote: r, peer: remotePort, masked: false, pending: false });
      if (p >= 0) Object.assign(u, { state: "interdomain", peer: p });
      return p;
    }
    const offer = this.offers.get(remotePort);
    if (!offer) return -EINVAL;
    this.offers.delete(remotePort);
    const p = this.newPort({ state: "interdomain", remote: DOM0, masked: false, pending: false });
    if (p >= 0) this.ports.get(p)!.backend = new BackendEnd(this, p, offer);
    return p;
  }

  notify(port: number): number {
    const p = this.ports.get(port);
    if (!p || p.state === "closed") return -EINVAL;
    this.sent.set(port, (this.sent.get(port) ?? 0) + 1);
    if (p.state === "unbound") return 0; // Xen drops a notification on an unbound port
    if (p.peer !== undefined) this.raise(p.peer);
    else p.backend!.onNotify();
    return 0;
  }

  mask(port: number): number {
    const p = this.ports.get(port);
    if (!p) return -EINVAL;
    p.masked = true;
    return 0;
  }

  unmask(port: number): number {
    const p = this.ports.get(port);
    if (!p) return -EINVAL;
    p.masked = false; // a pending bit set while masked is now visible to block()/poll()
    return 0;
  }

  close(port: number): number {
    const p = this.ports.get(port);
    if (!p) return -EINVAL;
    this.ports.delete(port);
    if (p.peer !== undefined) {
      const q = this.ports.get(p.peer);
      if (q) Object.assign(q, { state: "unbound", peer: undefined });
    }
    if (p.backend) p.backend.closed = true;
    return 0;
  }

  /** Test-and-clear of up to `max` pending, unmasked ports, lowest first. */
  poll(max: number): number[] {
    const out: number[] = [];
    for (const [n, p] of [...this.ports].sort((a, b) => a[0] - b[0])) {
      if (out.length >= max) break;
      if (p.pending && !p.masked) {
        p.pending = false;
        out.push(n);
      }
    }
    return out;
  }

  anyPending(): boolean {
    for (const p of this.ports.values()) if (p.pending && !p.masked) return true;
    return false;
  }

  // ---- dom0's side ----

  private readonly offers = new Map<number, () => void>();
  private nextOffer = 1;

  /** A backend allocates an unbound dom0 port for the guest to bind (bindInterdomain(0, port)). */
  offerPort(onNotify: () => void): number {
    const n = this.nextOffer++;
    this.offers.set(n, onNotify);
    return n;
  }

  /** A backend binds to a port the guest allocated unbound for dom0. Throws when Xen would refuse. */
  backendBind(guestPort: number, onNotify: () => void): BackendEnd {
    const p = this.ports.get(guestPort);
    if (!p || p.state !== "unbound" || p.remote !== DOM0)
      throw new Error(`event channel ${guestPort}: not an unbound port of domain ${this.domid} for dom0`);
    const end = new BackendEnd(this, guestPort, onNotify);
    Object.assign(p, { state: "interdomain", backend: end });
    return end;
  }

  /** Binds a port at boot, as the domain builder does for xenstore and the console. */
  bootPort(onNotify: () => void): BackendEnd {
    const n = this.newPort({ state: "interdomain", remote: DOM0, masked: false, pending: false });
    const end = new BackendEnd(this, n, onNotify);
    this.ports.get(n)!.backend = end;
    return end;
  }

  raise(port: number): void {
    const p = this.ports.get(port);
    if (p && p.state !== "closed") p.pending = true;
  }

  isPending(port: number): boolean {
    return this.ports.get(port)?.pending ?? false;
  }

  private remoteId(remote: number): number {
    if (remote === DOMID_SELF || remote === this.domid) return this.domid;
    if (remote === DOM0) return DOM0;
    return -ESRCH;
  }

  private newPort(p: Port): number {
    for (let n = 1; n < NR_PORTS; n++) {
      if (this.ports.has(n)) continue;
      this.ports.set(n, p);
      return n;
    }
    return -ENOSPC;
  }
}
