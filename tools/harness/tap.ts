// The TAP wire: a guest's vif whose peer is a real Linux network stack. The
// test makes a private network namespace (Netns), a TAP device inside it
// (TapDevice: tap-helper.c, built with the system cc and run under
// `ip netns exec`, relays frames over its stdin and stdout), and runs the guest
// in a worker thread (TapGuest, guest-worker.ts): the guest's block() sleeps in
// Atomics.wait, so it cannot share a thread with the event loop that reads the
// TAP. Frames cross between the threads in two bounded queues in shared memory
// (frame-queue.ts); a frame for the guest wakes its block() like an event.
//
//   ping/nc/curl ── Linux stack ── tap (in netns) ═ tap-helper ═ main thread ═ queues ═ worker: netback ─ guest
//
// Flow control, end to end: netback holds at most `rxBacklog` frames for the
// guest's RX slots (xen-netback stops its queue likewise), then the toGuest
// queue fills, then the main thread stops reading the helper, whose device
// queue (txqueuelen) then drops, as a real interface does. The other way, a
// full fromGuest queue makes the guest's netback wait up to `fullWaitMs`,
// then drop. Every frame across the TAP is captured (pcap.ts) for a failing test.
// Nothing leaves the namespace: it has only lo and the TAP.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { CACHE_DIR } from "../lib/paths.ts";
import { FrameQueue, MAX_FRAME, Q } from "./frame-queue.ts";
import { SHUTDOWN_REQUEST, type GuestWorkerData, type GuestWorkerMessage, type GuestWorkerResult } from "./guest-worker.ts";
import type { CapturedFrame } from "./pcap.ts";
import type { VifOptions } from "./netback.ts";

const HELPER_SOURCE = join(import.meta.dirname, "tap-helper.c");

/** Whether this machine can run the TAP wire; `reason` says why not. */
export function tapSupport(): { ok: boolean; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: "not root: network namespaces and TAP devices need root" };
  try {
    accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: "/dev/net/tun is missing (no tun module, or a container without it)" };
  }
  return { ok: true, reason: "" };
}

/** Runs a command, throwing its stderr with the command line when it fails. */
function run(cmd: string, args: string[], what = `${cmd} ${args.join(" ")}`): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  } catch (e: any) {
    if (e.code === "ENOENT") throw new Error(`${what}: ${cmd} is not installed (tools/setup installs it: iproute2, iputils-ping, ...)`);
    throw new Error(`${what}: ${(e.stderr || e.message).trim()}`);
  }
}

/** Builds tap-helper.c with the system cc into .cache/tap-helper/<source hash>/ (once); its path. */
export function buildTapHelper(): string {
  const src = readFileSync(HELPER_SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 16);
  const dir = join(CACHE_DIR, "tap-helper", hash);
  const bin = join(dir, "tap-helper");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  run("cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp, HELPER_SOURCE], `cc ${HELPER_SOURCE}`);
  renameSync(tmp, bin); // atomic: a parallel build never sees half a binary
  return bin;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e.code !== "ESRCH";
  }
}

/** What a command in the namespace printed, and how it ended. */
export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stdout's bytes, as they came (binary data). */
  out: Buffer;
  stderr: string;
  /** Set when the deadline ended it. */
  timedOut: boolean;
}

/** A private network namespace: `ip netns add`, commands in it, and its removal. */
export class Netns {
  private deleted = false;
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** Creates `name` (default morgana-<pid>): only lo, up; IPv6 off, so the wire carries only what the test sends. */
  static create(name = `morgana-${process.pid}`): Netns {
    // Leftovers of killed runs: this name (a run with our pid), and morgana-<pid> of a process that is gone.
    for (const line of run("ip", ["netns", "list"]).split("\n")) {
      const old = line.split(" ")[0];
      const pid = /^morgana-(\d+)$/.exec(old)?.[1];
      if (old === name || (pid && !alive(Number(pid)))) run("ip", ["netns", "del", old]);
    }
    run("ip", ["netns", "add", name]);
    const ns = new Netns(name);
    try {
      ns.ip("link", "set", "lo", "up");
      for (const k of ["all", "default"]) run("ip", ["netns", "exec", name, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
    } catch (e) {
      ns.delete();
      throw e;
    }
    return ns;
  }

  /** `ip -n <ns> args...`, synchronously (configuration, not traffic). */
  ip(...args: string[]): string {
    return run("ip", ["-n", this.name, ...args]);
  }

  /** Starts a command inside the namespace (its stdio piped); killed by delete() if still running. */
  spawn(cmd: string, args: string[]): ChildProcess {
    if (this.deleted) throw new Error(`netns ${this.name}: deleted`);
    const c = spawn("ip", ["netns", "exec", this.name, cmd, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    this.children.add(c);
    c.on("exit", () => this.children.delete(c));
    c.on("error", () => this.children.delete(c));
    return c;
  }

  /**
   * Runs a command inside the namespace to its end (asynchronously: the TAP bridge keeps
   * running meanwhile), killed after timeoutMs. stdin, when given, is written and closed.
   */
  exec(cmd: string, args: string[], opts: { timeoutMs?: number; stdin?: Uint8Array } = {}): Promise<Ran> {
    const c = this.spawn(cmd, args);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout!.on("data", (b: Buffer) => out.push(b));
    c.stderr!.on("data", (b: Buffer) => err.push(b));
    c.stdin!.on("error", () => {}); // a command that exits before reading all of it
    c.stdin!.end(opts.stdin);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      c.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    return new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        const bytes = Buffer.concat(out);
        resolve({ code, signal, stdout: bytes.toString(), out: bytes, stderr: Buffer.concat(err).toString(), timedOut });
      };
      c.on("error", (e) => {
        err.push(Buffer.from(`${cmd}: ${e.message}\n`));
        done(null, null);
      });
      c.on("close", done);
    });
  }

  /** Kills what still runs in it and removes the namespace (its TAP goes with it). Safe to call twice. */
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    for (const c of this.children) c.kill("SIGKILL");
    try {
      run("ip", ["netns", "del", this.name]);
    } catch (e: any) {
      if (!/No such file/.test(e.message)) throw e;
    }
  }
}

/** A TAP device in a namespace, held open by tap-helper; frames in and out. */
export class TapDevice {
  /** Called with each frame the Linux stack sends (a copy the caller may keep). */
  onFrame: (frame: Uint8Array) => void = () => {};
  /** Frames read from the device, and written to it. */
  framesIn = 0;
  framesOut = 0;
  private buf: Buffer = Buffer.alloc(0);
  private readonly exited: Promise<{ code: number | null; stderr: string }>;
  private stderr = "";
  private closing = false;
  private failure?: string;

  private constructor(
    readonly name: string,
    readonly netns: Netns,
    private readonly proc: ChildProcess,
  ) {
    proc.stderr!.on("data", (b: Buffer) => (this.stderr += b.toString()));
    proc.stdin!.on("error", (e) => (this.failure ??= `tap-helper's stdin: ${e.message}`));
    this.exited = new Promise((resolve) => proc.on("close", (code) => resolve({ code, stderr: this.stderr })));
  }

  /** Creates the device `name` inside `netns` and waits (up to 10 s) until it exists. */
  static async open(netns: Netns, name: string): Promise<TapDevice> {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new Error(`TAP name "${name}": 1..15 letters, digits, _ . or - (IFNAMSIZ)`);
    const proc = netns.spawn(buildTapHelper(), [name]);
    const tap = new TapDevice(name, netns, proc);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`tap-helper ${name}: not ready after 10 s: ${tap.stderr.trim()}`));
      }, 10_000);
      let ready = false;
      proc.stdout!.on("data", (b: Buffer) => {
        tap.buf = tap.buf.length ? Buffer.concat([tap.buf, b]) : b;
        if (!ready) {
          if (tap.buf.length < 4) return;
          if (tap.buf.readUInt32BE(0) !== 0) return tap.fail(`its first record is not "ready" (length ${tap.buf.readUInt32BE(0)})`);
          ready = true;
          tap.buf = tap.buf.subarray(4);
          clearTimeout(timer);
          resolve();
        }
        tap.records();
      });
      proc.on("error", (e) => {
        clearTimeout(timer);
        reject(new Error(`tap-helper ${name}: ${e.message}`));
      });
      proc.on("close", (code) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`tap-helper ${name} exited (${code}) before its device was ready: ${tap.stderr.trim()}`));
      });
    });
    return tap;
  }

  /** Why the device stopped working, once it has. */
  get error(): string | undefined {
    return this.failure;
  }

  private fail(why: string): void {
    this.failure ??= `tap-helper ${this.name}: ${why}`;
    this.proc.kill("SIGKILL");
  }

  // Every whole record in buf, each checked: 1..MAX_FRAME bytes.
  private records(): void {
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = this.buf.readUInt32BE(at);
      if (len < 1 || len > MAX_FRAME) return this.fail(`a record of ${len} bytes from the device: a frame has 1..${MAX_FRAME}`);
      if (this.buf.length - at - 4 < len) break;
      const frame = Uint8Array.prototype.slice.call(this.buf, at + 4, at + 4 + len);
      at += 4 + len;
      this.framesIn++;
      this.onFrame(frame);
    }
    this.buf = this.buf.subarray(at);
  }

  /** Writes a frame to the device; false when the pipe is full (wait for drained() before more). */
  send(frame: Uint8Array): boolean {
    if (frame.length < 14 || frame.length > MAX_FRAME)
      throw new Error(`${this.name}: a frame of ${frame.length} bytes: a frame has 14..${MAX_FRAME}`);
    if (this.closing || this.failure) return true; // a closed wire drops
    const rec = Buffer.allocUnsafe(4 + frame.length);
    rec.writeUInt32BE(frame.length, 0);
    rec.set(frame, 4);
    this.framesOut++;
    return this.proc.stdin!.write(rec);
  }

  /** Resolves when the pipe to the helper has room again (or the helper is gone). */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closing || this.failure || this.proc.exitCode !== null) return resolve();
      const done = () => {
        this.proc.stdin!.off("drain", done);
        this.proc.off("close", done);
        resolve();
      };
      this.proc.stdin!.on("drain", done);
      this.proc.on("close", done);
    });
  }

  /** Stops (and resumes) reading the device: back-pressure towards the Linux stack. */
  pause(): void {
    this.proc.stdout!.pause();
  }
  resume(): void {
    this.proc.stdout!.resume();
  }

  /** Closes the device (the helper's stdin ends; it exits), SIGKILL after 5 s; the helper's last words. */
  async close(): Promise<{ code: number | null; stderr: string }> {
    this.closing = true;
    this.proc.stdin!.end();
    this.proc.stdout!.resume();
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

export interface TapGuestOptions {
  /** The guest's wasm (a path: the worker loads it). */
  wasm: string;
  native?: string;
  cmdline?: string;
  memoryMiB?: number;
  /** The vif (netback.ts); its wire is the TAP. */
  vif?: Omit<VifOptions, "wire">;
  /** The whole run's deadline: the worker is ended then and the outcome is "timeout" (default 120 s). */
  timeoutMs?: number;
  /** Console text as the guest writes it. */
  onConsole?: (text: string) => void;
  /** Each queue's bytes (a power of two; default 4 MiB). */
  queueBytes?: number;
  /** Frames are captured whole up to this many bytes, then their first 128 bytes (default 64 MiB). */
  captureBytes?: number;
  rxBacklog?: number;
  fullWaitMs?: number;
}

export interface TapRunResult extends GuestWorkerResult {
  /** The wire's view: frames each way through the queues, and frames dropped at a full queue. */
  wire: { toGuest: number; fromGuest: number; fromGuestDropped: number };
}

type WaitAsync = (
  a: Int32Array,
  i: number,
  v: number,
  ms: number,
) => { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
const waitAsync: WaitAsync = (Atomics as any).waitAsync;

/** Resolves when word i of a leaves v, or after ms. */
async function changed(a: Int32Array, i: number, v: number, ms: number): Promise<void> {
  const r = waitAsync(a, i, v, ms);
  if (r.async) await r.value;
}

// The worker runs TypeScript: it registers tsx's loader, then imports its entry (Node 20 does
// not apply an --import loader of a worker's execArgv to the worker's own entry).
const TSX_API = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist/esm/api/index.mjs")).href;
const WORKER_ENTRY = new URL("./guest-worker.ts", import.meta.url).href;
const WORKER_BOOT = `import(${JSON.stringify(TSX_API)}).then((t) => { t.register(); return import(${JSON.stringify(WORKER_ENTRY)}); });`;

/** A guest running in a worker thread, its first vif bridged to a TapDevice. */
export class TapGuest {
  /** Every frame across the TAP: "rx" to the guest, "tx" from it. */
  readonly capture: CapturedFrame[] = [];
  /** Resolves when the guest's vif is connected (netback's Connected): traffic can start. */
  readonly connected: Promise<void>;
  /** Resolves when the guest ends (or the deadline ends it). */
  readonly done: Promise<TapRunResult>;
  /** The console so far. */
  console = "";
  private readonly toGuest: FrameQueue;
  private readonly fromGuest: FrameQueue;
  private readonly worker: Worker;
  private readonly control = new Int32Array(new SharedArrayBuffer(16));
  private readonly pending: Uint8Array[] = [];
  private flushing = false;
  private finished = false;
  private captured = 0;
  /** until()'s waiters, checked at each console write and at the end. */
  private readonly watchers = new Set<{ check: () => void }>();
  private readonly captureBytes: number;

  constructor(
    opts: TapGuestOptions,
    private readonly tap: TapDevice,
  ) {
    this.toGuest = FrameQueue.create("frames to the guest", opts.queueBytes);
    this.fromGuest = FrameQueue.create("frames from the guest", opts.queueBytes);
    this.captureBytes = opts.captureBytes ?? 64 << 20;
    const data: GuestWorkerData = {
      wasm: opts.wasm,
      native: opts.native,
      cmdline: opts.cmdline,
      memoryMiB: opts.memoryMiB,
      vif: opts.vif ?? {},
      toGuest: this.toGuest.sab,
      fromGuest: this.fromGuest.sab,
      control: this.control.buffer as SharedArrayBuffer,
      fullWaitMs: opts.fullWaitMs ?? 200,
      rxBacklog: opts.rxBacklog ?? 256,
    };
    this.worker = new Worker(WORKER_BOOT, { eval: true, workerData: data });
    let onConnected!: () => void;
    let onFailed!: (e: Error) => void;
    this.connected = new Promise<void>((res, rej) => ((onConnected = res), (onFailed = rej)));
    this.connected.catch(() => {}); // a run that never connects reports through `done` too
    tap.onFrame = (f) => this.fromTap(f);
    const pump = this.pumpFromGuest();
    const timeoutMs = opts.timeoutMs ?? 120_000;
    this.done = new Promise<TapRunResult>((resolve, reject) => {
      let result: GuestWorkerResult | undefined;
      let error: string | undefined;
      const timer = setTimeout(() => {
        error = `the guest did not finish in ${timeoutMs} ms: its worker was ended`;
        void this.worker.terminate();
      }, timeoutMs);
      this.worker.on("message", (m: GuestWorkerMessage) => {
        if (m.type === "console") {
          this.console += m.text;
          opts.onConsole?.(m.text);
          for (const w of [...this.watchers]) w.check();
        } else if (m.type === "connected") onConnected();
        else if (m.type === "result") result = m.result;
        else if (m.type === "error") error = m.message;
      });
      this.worker.on("error", (e) => (error ??= `the guest's worker failed: ${e.stack ?? e.message}`));
      this.worker.on("exit", async (code) => {
        clearTimeout(timer);
        this.finished = true;
        for (const w of [...this.watchers]) w.check();
        this.fromGuest.close();
        this.toGuest.close();
        await pump; // the guest's last frames go out
        onFailed(new Error(`the guest ended before its vif connected: ${error ?? result?.detail}`));
        const wire = {
          toGuest: this.toGuest.count("PUSHED"),
          fromGuest: this.fromGuest.count("PUSHED"),
          fromGuestDropped: this.fromGuest.count("DROPPED"),
        };
        if (result) return resolve({ ...result, wire });
        if (error && /did not finish/.test(error))
          return resolve({
            outcome: "timeout",
            exitCode: 124,
            console: this.console + `HANG: ${error}\n`,
            detail: `timeout: ${error}`,
            ms: timeoutMs,
            vif: { errors: [], disabled: false, txFrames: 0, rxFrames: 0, rxQueueDrops: 0, wireDrops: 0, beforeConnect: 0 },
            grants: { grants: -1, mappings: -1 },
            wire,
          });
        reject(new Error(error ?? `the guest's worker exited (${code}) without a result`));
      });
    });
  }

  private keep(dir: "tx" | "rx", frame: Uint8Array): void {
    const whole = this.captured + frame.length <= this.captureBytes;
    this.captured += whole ? frame.length : 128;
    this.capture.push({
      atNs: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
      dir,
      frame: whole ? frame : frame.slice(0, 128),
      origLen: frame.length,
    });
  }

  // The Linux stack's frames into the toGuest queue; when it is full, they wait here and the TAP is paused.
  private fromTap(frame: Uint8Array): void {
    this.keep("rx", frame);
    this.toGuestFrame(frame);
  }

  /** Sends a frame to the guest as if it came from the TAP (not through Linux): a test's stop frame. */
  send(frame: Uint8Array): void {
    this.keep("rx", frame);
    this.toGuestFrame(frame);
  }

  private toGuestFrame(frame: Uint8Array): void {
    if (this.finished) return;
    if (this.pending.length === 0 && this.toGuest.push(frame)) return;
    this.pending.push(frame);
    if (this.pending.length >= 64) this.tap.pause();
    if (!this.flushing) void this.flush();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length && !this.finished) {
      const freed = Atomics.load(this.toGuest.header, Q.FREED);
      while (this.pending.length && this.toGuest.push(this.pending[0])) this.pending.shift();
      if (this.pending.length) await changed(this.toGuest.header, Q.FREED, freed, 100);
    }
    this.pending.length = 0;
    this.flushing = false;
    this.tap.resume();
  }

  // The guest's frames to the TAP, as they come; ends when the worker has and the queue is empty.
  private async pumpFromGuest(): Promise<void> {
    const q = this.fromGuest;
    for (;;) {
      const seq = Atomics.load(q.header, Q.SEQ);
      const closed = q.closed; // read before the last pops: whatever was pushed before close() is sent
      for (let f = q.pop(); f; f = q.pop()) {
        this.keep("tx", f);
        if (!this.tap.send(f)) await this.tap.drained();
      }
      if (closed) return;
      await changed(q.header, Q.SEQ, seq, 200);
    }
  }

  /** Resolves when the console matches `re` (an app's "ready" line); rejects if the guest ends first or after ms. */
  until(re: RegExp, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = { check: () => {} };
      const done = (err?: string) => {
        clearTimeout(timer);
        this.watchers.delete(w);
        if (err) reject(new Error(`${err}:\n${this.console}`));
        else resolve();
      };
      const timer = setTimeout(() => done(`the guest's console did not show ${re} in ${ms} ms`), ms);
      w.check = () => {
        if (re.test(this.console)) done();
        else if (this.finished) done(`the guest ended before its console showed ${re}`);
      };
      this.watchers.add(w);
      w.check();
    });
  }

  /** Asks the guest to stop as `xl shutdown` (or `xl reboot`) does: control/shutdown is written when it next blocks. */
  shutdown(how: "poweroff" | "reboot" = "poweroff"): void {
    const code = Number(Object.keys(SHUTDOWN_REQUEST).find((k) => SHUTDOWN_REQUEST[Number(k)] === how));
    Atomics.store(this.control, 0, code);
    this.toGuest.poke();
  }

  /** Ends the guest now (its result says "timeout" only if the deadline did it). */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }
}
