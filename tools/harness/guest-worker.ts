// The guest's side of the TAP wire (tap.ts): runs one guest with runWasm in a
// worker thread, its first vif's peer being two frame queues in shared memory.
// Frames the guest sends go into `fromGuest` (the main thread writes them to
// the TAP device); frames in `toGuest` are handed to netback whenever the guest
// blocks, and their arrival wakes a sleeping block() (Domain.wake is the queue's
// header: the main thread's push notifies it), as an event would.
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { runWasm, HarnessError } from "./run.ts";
import { FrameQueue, Q } from "./frame-queue.ts";
import type { Peer, VifOptions, WirePort } from "./netback.ts";
import type { Domain } from "./domain.ts";

/** What tap.ts hands the worker (structured-cloned: no functions). */
export interface GuestWorkerData {
  wasm: string;
  native?: string;
  cmdline?: string;
  memoryMiB?: number;
  /** The vif's options, without a wire: the wire is the queues. */
  vif: Omit<VifOptions, "wire">;
  toGuest: SharedArrayBuffer;
  fromGuest: SharedArrayBuffer;
  /** How long a frame from the guest waits for room in a full fromGuest queue before it is dropped. */
  fullWaitMs: number;
  /** Word 0: a toolstack request from the main thread (SHUTDOWN_REQUEST), 0 when none; it pokes toGuest. */
  control: SharedArrayBuffer;
  /** Frames netback may hold for the guest's RX slots before the queue is left to back up (xen-netback stops its queue too). */
  rxBacklog: number;
}

/** What `xl shutdown` / `xl reboot` write to control/shutdown, by the control word's value. */
export const SHUTDOWN_REQUEST: Record<number, string> = { 1: "poweroff", 2: "reboot" };

/** Messages to the main thread. */
export type GuestWorkerMessage =
  | { type: "console"; text: string }
  | { type: "connected" }
  | { type: "result"; result: GuestWorkerResult }
  | { type: "error"; message: string };

export interface GuestWorkerResult {
  outcome: string;
  exitCode: number;
  console: string;
  detail: string;
  ms: number;
  /** netback's view of the vif after the run. */
  vif: {
    errors: string[];
    disabled: boolean;
    txFrames: number;
    rxFrames: number;
    rxQueueDrops: number;
    wireDrops: number;
    /** Frames from the TAP before the vif was connected (nowhere to deliver them). */
    beforeConnect: number;
  };
  /** Grants and mappings still live after the run (both 0 for a guest that closed its device). */
  grants: { grants: number; mappings: number };
}

const post = (m: GuestWorkerMessage) => parentPort!.postMessage(m);

/** The vif's peer: the fromGuest queue; toGuest is drained by the domain's service hook. */
class QueuePeer implements Peer {
  port?: WirePort;
  beforeConnect = 0;
  constructor(
    private readonly out: FrameQueue,
    private readonly fullWaitMs: number,
  ) {}

  start(port: WirePort): void {
    this.port = port;
    post({ type: "connected" });
  }

  receive(frame: Uint8Array): void {
    if (this.out.closed) return;
    const deadline = performance.now() + this.fullWaitMs;
    while (!this.out.push(frame)) {
      // Full: the main thread is behind; wait for it to free room, up to the deadline.
      const freed = Atomics.load(this.out.header, Q.FREED);
      const left = deadline - performance.now();
      if (left <= 0 || this.out.closed) return this.out.dropped();
      Atomics.wait(this.out.header, Q.FREED, freed, left);
    }
  }
}

function main(d: GuestWorkerData): void {
  const toGuest = new FrameQueue(d.toGuest, "frames to the guest");
  const fromGuest = new FrameQueue(d.fromGuest, "frames from the guest");
  const peer = new QueuePeer(fromGuest, d.fullWaitMs);
  const setup = (dom: Domain) => {
    const vif = dom.vifs[0];
    dom.wake = toGuest.header;
    const control = new Int32Array(d.control);
    // Runs each time the guest blocks: frames from the TAP into netback, while it has room for them.
    dom.services.push(() => {
      vif.capture.length = 0; // the main thread captures what crosses the TAP; no second copy here
      const req = Atomics.exchange(control, 0, 0);
      if (SHUTDOWN_REQUEST[req]) dom.xenstored.write(`/local/domain/${dom.domid}/control/shutdown`, SHUTDOWN_REQUEST[req]);
      while (vif.rxWaiting < d.rxBacklog) {
        const f = toGuest.pop();
        if (!f) return;
        if (peer.port) peer.port.send(f);
        else peer.beforeConnect++;
      }
    });
  };
  let r;
  try {
    r = runWasm({
      wasm: d.wasm,
      native: d.native,
      cmdline: d.cmdline,
      memoryMiB: d.memoryMiB,
      vifs: [{ ...d.vif, wire: peer }],
      setup,
      onConsole: (b) => post({ type: "console", text: Buffer.from(b).toString("utf8") }),
    });
  } catch (e: any) {
    fromGuest.close();
    post({ type: "error", message: e instanceof HarnessError ? e.message : (e?.stack ?? String(e)) });
    return;
  }
  fromGuest.close();
  const v = r.domain.vifs[0];
  post({
    type: "result",
    result: {
      outcome: r.outcome,
      exitCode: r.exitCode,
      console: r.console,
      detail: r.detail,
      ms: r.ms,
      vif: {
        errors: [...v.errors],
        disabled: v.disabled,
        txFrames: v.txFrames,
        rxFrames: v.rxFrames,
        rxQueueDrops: v.rxQueueDrops,
        wireDrops: v.wireDrops,
        beforeConnect: peer.beforeConnect,
      },
      grants: r.domain.gnttab.live(),
    },
  });
}

if (!isMainThread) main(workerData as GuestWorkerData); // tap.ts imports SHUTDOWN_REQUEST from here too
