// A PV console backend (xenconsoled's role) for a console device the guest
// connects through xenbus: device/console/<id>, keys ring-ref and port, the
// ring of xen/include/public/io/console.h in a page the guest grants to dom0.
// `budget` bytes are consumed per notification, so tests see a full ring and
// the guest's flow control; every byte consumed is logged in order.
import type { Domain } from "./domain.ts";
import { BackendEnd } from "./event-channels.ts";
import { GrantMapping } from "./grant-table.ts";
import { toolstackDevice, XenbusState } from "./xenbus.ts";

/** struct xencons_interface offsets (io/console.h). */
export const CONS = {
  IN: 0,
  IN_SIZE: 1024,
  OUT: 1024,
  OUT_SIZE: 2048,
  IN_CONS: 3072,
  IN_PROD: 3076,
  OUT_CONS: 3080,
  OUT_PROD: 3084,
} as const;

export class ConsoleDevice {
  readonly frontend: string;
  readonly backend: string;
  private map?: GrantMapping;
  private port?: BackendEnd;
  private bytes: number[] = [];
  /** Notifications that found the ring full (flow control happened). */
  fullRings = 0;
  notifies = 0;
  /** Protocol errors the backend saw (bad ring-ref, bad indices ...). */
  readonly errors: string[] = [];

  constructor(
    private readonly dom: Domain,
    readonly id: number,
    public budget = Infinity,
  ) {
    const d = dom.domid;
    this.frontend = `/local/domain/${d}/device/console/${id}`;
    this.backend = `/local/domain/0/backend/console/${d}/${id}`;
    const xs = dom.xenstored;
    // What the toolstack writes for a device before the guest starts.
    toolstackDevice(xs, d, this.frontend, this.backend);
    xs.write(`${this.backend}/protocol`, "vt100");
    xs.write(`${this.backend}/state`, String(XenbusState.InitWait));
    xs.watch(`${this.frontend}/state`, () => this.frontendChanged());
    // A slow backend keeps working while the guest blocks, as xenconsoled would.
    dom.services.push(() => this.service());
  }

  /** The bytes consumed so far, as text. */
  text(): string {
    return Buffer.from(this.bytes).toString("utf8");
  }

  state(): number {
    return Number(this.dom.xenstored.read(`${this.backend}/state`));
  }

  private frontendChanged(): void {
    const xs = this.dom.xenstored;
    const fe = Number(xs.read(`${this.frontend}/state`));
    if (fe === XenbusState.Initialised && this.state() === XenbusState.InitWait) this.connect();
    else if (fe === XenbusState.Closing || fe === XenbusState.Closed) this.disconnect();
  }

  private connect(): void {
    const xs = this.dom.xenstored;
    const ref = Number(xs.read(`${this.frontend}/ring-ref`));
    const port = Number(xs.read(`${this.frontend}/port`));
    try {
      this.map = this.dom.gnttab.backendMap(ref, false);
      this.port = this.dom.evtchn.backendBind(port, () => this.service());
    } catch (e: any) {
      this.errors.push(e.message);
      xs.write(`${this.backend}/state`, String(XenbusState.Closed));
      return;
    }
    xs.write(`${this.backend}/state`, String(XenbusState.Connected));
  }

  private disconnect(): void {
    if (this.map) {
      this.service();
      this.map.unmap();
      this.map = undefined;
    }
    this.port = undefined;
    this.dom.xenstored.write(`${this.backend}/state`, String(XenbusState.Closed));
  }

  // Consumes up to `budget` bytes of output, then tells the guest there is room.
  private service(): void {
    const m = this.map;
    if (!m) return;
    const u32 = (off: number) => new DataView(m.read(off, 4).buffer).getUint32(0, true);
    const cons = u32(CONS.OUT_CONS);
    const prod = u32(CONS.OUT_PROD);
    const avail = (prod - cons) >>> 0;
    if (avail > CONS.OUT_SIZE) {
      this.errors.push(`out ring indices are corrupt (prod ${prod}, cons ${cons})`);
      return;
    }
    if (avail === CONS.OUT_SIZE) this.fullRings++;
    const n = Math.min(avail, this.budget);
    const data = m.read(CONS.OUT, CONS.OUT_SIZE);
    for (let i = 0; i < n; i++) this.bytes.push(data[(cons + i) & (CONS.OUT_SIZE - 1)]);
    const idx = new Uint8Array(4);
    new DataView(idx.buffer).setUint32(0, (cons + n) >>> 0, true);
    m.write(CONS.OUT_CONS, idx);
    if (n > 0) {
      this.notifies++;
      this.port?.notify();
    }
  }
}
