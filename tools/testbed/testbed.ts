// The Xen test bed: QEMU (TCG) boots Xen 4.17 + a Debian 6.1 dom0 whose initramfs
// holds Xen's toolstack, and runs Xen PV guests in it with `xl create`.
//
// Contracts
// - ensureBootFiles(): runs tools/testbed/setup.sh (apt-get download + dpkg -x +
//   initramfs), cached under $CACHE_DIR/testbed keyed by package versions and
//   initramfs inputs. Throws TestbedError when it cannot build.
// - Testbed.start(): boots QEMU and resolves once dom0's command server answers;
//   throws TestbedError (with the serial log's last lines) when Xen or dom0 do not
//   come up. Every started test bed must be stop()ped; QEMU runs in its own process
//   group, is killed on every failure path, when this process exits, and (through
//   a watcher on a pipe) even when this process is SIGKILLed.
// - launch()/run()/runMany(): run guests, sequentially or at once, in one boot.
//   They never throw for anything the guest or dom0 does: the GuestResult says what
//   happened (outcome, console, `xl list` state, xl messages, timings). They throw
//   TestbedUsageError for bad specs (missing kernel file, bad config).
// - Disks live in dom0 (/tmp/disks/<name>.img, attached phy via loop by Xen's block
//   script): createDisk(), readDisk(), and a guest spec's `disks` list.
// - exec(): runs a POSIX sh script (busybox ash) in dom0 (xl save/restore, ip, ...), returns status+output.
// - Control protocol (a virtio-serial port in dom0, a unix socket on the host side): see
//   dom0/ctl-server. Not a 16550 UART: under TCG, its receive path stalled for good now and
//   then (half a command line stuck in the FIFO, no interrupt; seen with dom0/diag).
//   Files go both ways through a 9p share mounted at /host in dom0; xenconsoled
//   writes every guest's console log onto it, which is how consoles stream here.
// Everything dom0 and the guests print is untrusted: it is parsed with anchored
// patterns, and never evaluated.
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { createConnection, Socket } from "node:net";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  appendFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { CACHE_DIR, ROOT } from "../lib/paths.ts";
import { EXIT_CODE, Outcome } from "../lib/outcome.ts";
import {
  diskTarget,
  parseXl,
  serializeXl,
  withDiskTarget,
  XlConfigError,
  XlEntry,
  xlList,
  xlListValue,
  xlQuote,
  xlStringValue,
} from "./xlcfg.ts";

export const TESTBED_CACHE = join(CACHE_DIR, "testbed");
const SETUP_SH = join(ROOT, "tools", "testbed", "setup.sh");

/** Xen, dom0 or QEMU failed: the message names the cause and carries the relevant log lines. */
export class TestbedError extends Error {
  /** QEMU's process group, so a caller can check nothing was left behind. */
  pgid?: number;
}
/** A bad request from the caller (missing file, unusable xl config). */
export class TestbedUsageError extends Error {}

export interface BootFiles {
  dir: string;
  xen: string;
  vmlinuz: string;
  initrd: string;
  /** Package versions and initramfs hash the files were built from. */
  key: string;
  setupMs: number;
}

/** Builds (or finds in the cache) Xen, the dom0 kernel and the initramfs. */
export function ensureBootFiles(opts: { quiet?: boolean; timeoutS?: number } = {}): BootFiles {
  const t0 = Date.now();
  const r = spawnSync("bash", [SETUP_SH, TESTBED_CACHE], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", opts.quiet ? "pipe" : "inherit"],
    timeout: (opts.timeoutS ?? 900) * 1000,
    killSignal: "SIGKILL",
  });
  const m = /^BOOT_DIR (.+)$/m.exec(r.stdout ?? "");
  if (r.status !== 0 || !m) {
    const why = r.error ? r.error.message : `exit status ${r.status}`;
    throw new TestbedError(
      `test-bed set-up failed (${why}): ${(r.stderr ?? "").trim().split("\n").slice(-5).join(" | ")}` +
        ` — see the messages above; tools/testbed/setup.sh can be run by hand`,
    );
  }
  const dir = m[1].trim();
  return {
    dir,
    xen: join(dir, "xen.elf"),
    vmlinuz: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.cpio.gz"),
    key: readFileSync(join(dir, "KEY"), "utf8"),
    setupMs: Date.now() - t0,
  };
}

export interface StartOptions {
  /** Seconds for Xen + dom0 to come up (default 300: a boot is ~10–60 s, slower on a loaded host). */
  readyTimeoutS?: number;
  /** Upper bound on QEMU's whole life, enforced outside this process too (default 3 h). */
  maxLifetimeS?: number;
  /** Each line of the QEMU serial (Xen + dom0 console), as it arrives. */
  onSerial?: (line: string) => void;
  /** Extra Xen command-line options. */
  xenExtra?: string;
  /** Boot this file as the dom0 kernel instead of Debian's (failure-handling tests). */
  dom0Kernel?: string;
  /** QEMU's -cpu model (default "max", or $MORGANA_TESTBED_CPU). */
  cpu?: string;
  quiet?: boolean;
}

export interface StartTimings {
  setupMs: number;
  /** QEMU spawn → dom0's command server ready. */
  bootMs: number;
  /** Milestones, ms since QEMU spawn. */
  milestones: Record<string, number>;
}

export interface GuestSpec {
  /** Path of an xl config (.xl); its kernel= is resolved relative to the file. */
  config?: string;
  /** Or the config text itself (kernel= then relative to `baseDir`, default cwd). */
  configText?: string;
  baseDir?: string;
  /** Override the kernel image (host path). */
  kernel?: string;
  /** Override the guest command line (xl `extra`). */
  extra?: string;
  memoryMiB?: number;
  /** Base of the domain name (default: the config's name); a run number is appended. */
  name?: string;
  /** Names of dom0 disks (createDisk) for the config's disk entries, in order; extra ones are added as xvdb, ... */
  disks?: string[];
  /** Seconds from the end of `xl create` until the guest counts as hung (default 60). */
  timeoutS?: number;
  /** Each console line as it arrives. */
  onLine?: (line: string) => void;
  /** Console bytes kept in the result (default 4 MiB); the rest is dropped and counted. */
  maxConsoleBytes?: number;
}

/** Outcome of one guest: the project-wide outcomes, plus "saved" (xl save took it). */
export type GuestOutcome = Outcome | "saved";
/** XTF-style verdict of an in-guest test (one result line: TEST PASS, FAIL, SKIP). */
export type Verdict = "pass" | "fail" | "skip" | "error" | "crash" | "timeout";

export interface GuestResult {
  /** Domain name used in dom0 (`<name>-<run number>`). */
  domain: string;
  domid?: number;
  outcome: GuestOutcome;
  exitCode: number;
  verdict: Verdict;
  /** One line saying how the guest ended. */
  detail: string;
  /** The guest's console (CRLF → LF). */
  console: string;
  consoleDroppedBytes: number;
  /** Last `xl list` state of the domain (e.g. "--ps--", "--c---"), when it was seen. */
  state?: string;
  /** Xen's SHUTDOWN_* reason code, when the domain shut down. */
  shutdownReason?: number;
  /** xl's own messages (create, destroy). */
  xl: string[];
  /** Tail of `xl dmesg` (crash, timeout). */
  dmesg: string[];
  /** Tail of /var/log/xen/xl-<domain>.log. */
  xlLog: string[];
  /** When the test bed failed during the run: the failure with its log lines. */
  testbedLog?: string;
  timings: {
    /** dom0-side duration of `xl create`. */
    createMs?: number;
    /** Host: request sent → first console byte. */
    firstLineMs?: number;
    /** Host: request sent → result. */
    totalMs: number;
  };
}

export interface RunningGuest {
  domain: string;
  result: Promise<GuestResult>;
}

export interface ExecResult {
  status: number;
  output: string;
}

const SERIAL_KEEP = 400;
// Lines on the QEMU serial that mean the test bed is gone.
const FATAL = [
  /Panic on CPU/,
  /Kernel panic/,
  /\*\*\*\s+DOM0 crashed|Dom0 crashed|domain_crash.*d0v/i,
  /MORGANA-TESTBED: FAILED/,
  /Attempted to kill init/,
];
const MILESTONES: [string, RegExp][] = [
  ["xen", /\(XEN\) Xen version/],
  ["dom0Kernel", /Linux version/],
  ["dom0Init", /MORGANA-TESTBED: init started/],
  ["toolstack", /MORGANA-TESTBED: toolstack up/],
];
const DOM0_SHARE = "/host";
const live = new Set<Testbed>();
let hooksInstalled = false;

function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const tb of live) tb.kill();
  });
  for (const [sig, n] of [
    ["SIGINT", 2],
    ["SIGTERM", 15],
    ["SIGHUP", 1],
  ] as const) {
    const others = process.listenerCount(sig);
    process.on(sig, () => {
      for (const tb of live) tb.kill();
      if (others === 0) process.exit(128 + n);
    });
  }
}

// QEMU's parent: kills QEMU when our stdin pipe closes (this process died, even by
// SIGKILL) or when its lifetime is over; exits with QEMU's status.
const WRAPPER = `
max=$1; shift
exec 3<&0
"$@" </dev/null 3<&- & q=$!
{ read -r _ <&3; kill -KILL $q 2>/dev/null; } >/dev/null 2>&1 &
{ sleep "$max"; kill -KILL $q 2>/dev/null; } >/dev/null 2>&1 &
wait $q`;

export class Testbed {
  readonly runDir: string;
  readonly shareDir: string;
  readonly serialLog: string;
  timings: StartTimings = { setupMs: 0, bootMs: 0, milestones: {} };
  private proc?: ChildProcess;
  private sock?: Socket;
  private sockDir: string;
  private serialTail: string[] = [];
  private failure?: TestbedError;
  private exited = false;
  private exitWaiters: (() => void)[] = [];
  private pending = new Map<number, { resolve: (r: ExecResult) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private runSeq = 0;
  private t0 = 0;
  private onReady?: (err?: Error) => void;
  private stopping = false;

  private constructor(private opts: StartOptions) {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    this.runDir = join(TESTBED_CACHE, "runs", `${stamp}-${process.pid}`);
    this.shareDir = join(this.runDir, "share");
    this.serialLog = join(this.runDir, "serial.log");
    mkdirSync(join(this.shareDir, "console"), { recursive: true });
    mkdirSync(join(this.shareDir, "guests"), { recursive: true });
    mkdirSync(join(this.shareDir, "xfer"), { recursive: true });
    // unix socket paths are limited to ~108 bytes: keep it out of the (maybe deep) cache
    this.sockDir = mkdtempSync(join(tmpdir(), "morgana-tb-"));
  }

  /** Boots the test bed; resolves when dom0 takes commands. */
  static async start(opts: StartOptions = {}): Promise<Testbed> {
    const files = ensureBootFiles({ quiet: opts.quiet });
    pruneRuns();
    const tb = new Testbed(opts);
    tb.timings.setupMs = files.setupMs;
    try {
      await tb.boot(files);
    } catch (e) {
      tb.kill();
      throw e;
    }
    return tb;
  }

  private log(line: string) {
    if (!this.opts.quiet) process.stderr.write(`[testbed] ${line}\n`);
  }

  private boot(files: BootFiles): Promise<void> {
    const sockPath = join(this.sockDir, "ctl.sock");
    const xenArgs =
      "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=1 loglvl=all guest_loglvl=all" +
      ` noreboot smap=0 bootscrub=0${this.opts.xenExtra ? " " + this.opts.xenExtra : ""}`;
    const qemu = [
      "qemu-system-x86_64",
      "-accel",
      "tcg,thread=multi",
      "-cpu",
      this.opts.cpu ?? process.env.MORGANA_TESTBED_CPU ?? "max",
      "-smp",
      "1",
      "-m",
      "2048",
      "-machine",
      "pc",
      "-display",
      "none",
      "-vga",
      "none",
      "-nic",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-serial",
      "stdio",
      "-chardev",
      `socket,id=ctl,path=${sockPath},server=on,wait=off`,
      "-device",
      "virtio-serial-pci,id=vser",
      "-device",
      "virtserialport,bus=vser.0,chardev=ctl,name=morgana.ctl",
      "-fsdev",
      `local,id=share,path=${this.shareDir},security_model=none`,
      "-device",
      "virtio-9p-pci,fsdev=share,mount_tag=host",
      "-kernel",
      files.xen,
      "-append",
      xenArgs,
      // QEMU's multiboot loader: modules are comma-separated "file args"
      "-initrd",
      `${this.opts.dom0Kernel ?? files.vmlinuz} console=hvc0 earlyprintk=xen rdinit=/init loglevel=4,${files.initrd}`,
    ];
    writeFileSync(this.serialLog, `+ ${qemu.join(" ")}\n`);
    installExitHooks();
    live.add(this);
    this.t0 = Date.now();
    const proc = spawn("bash", ["-c", WRAPPER, "qemu-wrapper", String(this.opts.maxLifetimeS ?? 10800), ...qemu], {
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.proc = proc;
    proc.on("error", (e) => this.fail(`cannot start QEMU: ${e.message}`));
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        this.serialLine(buf.slice(0, nl).replace(/\r$/, ""));
        buf = buf.slice(nl + 1);
      }
      if (buf.length > 65536) {
        this.serialLine(buf);
        buf = "";
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.on("exit", (code, sig) => {
      if (buf) this.serialLine(buf);
      this.exited = true;
      try {
        process.kill(-proc.pid!, "SIGKILL"); // the wrapper's watchers (sleep, read)
      } catch {
        /* none left */
      }
      live.delete(this);
      if (!this.stopping) this.fail(`QEMU exited unexpectedly (${sig ? `signal ${sig}` : `status ${code}`})`);
      for (const w of this.exitWaiters.splice(0)) w();
    });
    const ready = new Promise<void>((resolveReady, rejectReady) => {
      const timer = setTimeout(
        () => this.fail(`Xen/dom0 not ready after ${this.opts.readyTimeoutS ?? 300} s`),
        (this.opts.readyTimeoutS ?? 300) * 1000,
      );
      this.onReady = (err) => {
        clearTimeout(timer);
        this.onReady = undefined;
        if (err) rejectReady(err);
        else resolveReady();
      };
    });
    this.connect(sockPath);
    return ready;
  }

  private connect(path: string, attempt = 0) {
    if (this.failure || this.exited) return;
    const s = createConnection(path);
    let buf = "";
    s.on("connect", () => {
      this.sock = s;
    });
    s.on("data", (d) => {
      buf += d.toString("latin1");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        this.ctlLine(buf.slice(0, nl).replace(/\r$/, ""));
        buf = buf.slice(nl + 1);
      }
      // replies are one line each; a runaway line means a broken channel
      if (buf.length > 64 * 1024 * 1024) this.fail("control channel: reply line over 64 MiB");
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      if (!this.sock && attempt < 200 && (e.code === "ENOENT" || e.code === "ECONNREFUSED"))
        setTimeout(() => this.connect(path, attempt + 1), 50);
      else if (!this.stopping) this.fail(`control socket: ${e.message}`);
    });
    s.on("close", () => {
      if (this.sock === s && !this.stopping && !this.exited) this.fail("control socket closed by QEMU");
    });
  }

  private serialLine(line: string) {
    const t = Date.now() - this.t0;
    appendFileSync(this.serialLog, `${(t / 1000).toFixed(2).padStart(8)} ${line}\n`);
    this.serialTail.push(line);
    if (this.serialTail.length > SERIAL_KEEP) this.serialTail.shift();
    this.opts.onSerial?.(line);
    for (const [name, rx] of MILESTONES) if (!(name in this.timings.milestones) && rx.test(line)) this.timings.milestones[name] = t;
    if (!this.stopping && FATAL.some((rx) => rx.test(line))) {
      // give Xen a moment to print the rest of the panic before we stop QEMU
      setTimeout(() => {
        const next = this.serialTail
          .slice(this.serialTail.lastIndexOf(line) + 1)
          .map((l) => l.replace(/^\(XEN\)\s*/, "").trim())
          .find((l) => l && !/^\*+$/.test(l));
        this.fail(`fatal message on the serial console: ${line.trim()}${next ? ` ${next}` : ""}`);
      }, 1500);
    }
  }

  private ctlLine(line: string) {
    const m = /^@@(\d{1,9}) (\S+)(?: (.*))?$/.exec(line);
    if (!m) return; // noise on the line (untrusted): ignore
    const id = Number(m[1]);
    if (id === 0) {
      if (m[2] === "ready" && this.onReady) {
        this.timings.bootMs = Date.now() - this.t0;
        this.timings.milestones.ready = this.timings.bootMs;
        this.onReady();
      } else if (m[2] === "bad-request") this.log("dom0 refused a malformed request line");
      return;
    }
    const p = this.pending.get(id);
    const r = /^(\d{1,3}) ?([A-Za-z0-9+/=]*)$/.exec(m[3] ?? "");
    if (!p || m[2] !== "end" || !r) return;
    this.pending.delete(id);
    p.resolve({ status: Number(r[1]), output: Buffer.from(r[2], "base64").toString("utf8") });
  }

  /** Marks the test bed dead, kills QEMU, and fails everything waiting on it. */
  private fail(reason: string) {
    if (this.failure) return;
    const tail = this.relevantLog();
    this.failure = new TestbedError(`test bed failure: ${reason}\n--- last serial lines (full log: ${this.serialLog}) ---\n${tail}`);
    this.failure.pgid = this.proc?.pid;
    this.log(`FAILURE: ${reason}`);
    this.kill();
    this.onReady?.(this.failure);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  /** The serial lines worth showing: around a panic if there is one, else the last 40. */
  private relevantLog(): string {
    const lines = this.serialTail;
    const i = lines.findIndex((l) => FATAL.some((rx) => rx.test(l)));
    const pick = i >= 0 ? lines.slice(Math.max(0, i - 25), i + 40) : lines.slice(-40);
    return pick.join("\n");
  }

  /** The failure that ended this test bed, if any. */
  get error(): TestbedError | undefined {
    return this.failure;
  }

  /** Kills QEMU's whole process group at once (idempotent, synchronous). */
  kill() {
    const pid = this.proc?.pid;
    if (pid && !this.exited) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    live.delete(this);
    this.sock?.destroy();
  }

  /** Runs a POSIX sh script (busybox ash) in dom0; rejects with TestbedError if dom0 does not answer in time. */
  exec(script: string, timeoutS = 60): Promise<ExecResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.sock) return Promise.reject(new TestbedError("test bed not started"));
    const id = this.nextId++;
    return new Promise<ExecResult>((res, rej) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const what = `dom0 did not answer a command within ${timeoutS} s: ${script.split("\n")[0].slice(0, 100)}`;
        void this.dom0Diagnostics().then((diag) => {
          this.fail(`${what}\n${diag}`);
          rej(this.failure);
        });
      }, timeoutS * 1000);
      this.pending.set(id, {
        resolve: (r) => (clearTimeout(timer), res(r)),
        reject: (e) => (clearTimeout(timer), rej(e)),
      });
      this.sock!.write(`${id} ${Buffer.from(script).toString("base64")}\n`);
    });
  }

  /**
   * Asks dom0, through the 9p share rather than the (possibly stuck) command channel, for a
   * dump of every process (tools/testbed/dom0/diag); returns a line saying where it is.
   */
  private async dom0Diagnostics(waitS = 20): Promise<string> {
    if (this.failure || this.exited) return "(no diagnostics: the test bed is gone)";
    const out = join(this.shareDir, "diag.txt");
    try {
      rmSync(out, { force: true });
      writeFileSync(join(this.shareDir, "diag-request"), "");
    } catch (e) {
      return `(no diagnostics: ${(e as Error).message})`;
    }
    for (let i = 0; i < waitS * 4 && !this.failure; i++) {
      await new Promise((res) => setTimeout(res, 250));
      if (!existsSync(out)) continue;
      const keep = join(this.runDir, `dom0-diag-${Date.now()}.txt`);
      copyFileSync(out, keep);
      const serial = readFileSync(out, "utf8")
        .split("\n")
        .filter((l) => /^\d+: uart/.test(l))
        .join("; ");
      return `dom0's process dump (through the share): ${keep}${serial ? `\n  serial ports: ${serial}` : ""}`;
    }
    return `dom0 did not answer a diagnostics request through the share within ${waitS} s either: its user space is stuck`;
  }

  private async execOk(script: string, what: string, timeoutS = 120): Promise<string> {
    const r = await this.exec(script, timeoutS);
    if (r.status !== 0) throw new TestbedError(`${what} failed in dom0 (status ${r.status}): ${r.output.trim()}`);
    return r.output;
  }

  /** Creates /tmp/disks/<name>.img in dom0: empty (sparse) of sizeMiB, or a copy of a host file. Returns its dom0 path. */
  async createDisk(name: string, src: { sizeMiB: number } | { from: string }): Promise<string> {
    checkName(name, "disk name");
    const path = `/tmp/disks/${name}.img`;
    if ("from" in src) {
      if (!existsSync(src.from)) throw new TestbedUsageError(`disk file ${src.from} does not exist`);
      const x = `disk-${name}-${this.nextId}`;
      copyFileSync(src.from, join(this.shareDir, "xfer", x));
      await this.execOk(`mv -f ${DOM0_SHARE}/xfer/${x} ${path}`, `copying ${src.from} into dom0`, 600);
    } else {
      if (!(Number.isInteger(src.sizeMiB) && src.sizeMiB > 0 && src.sizeMiB <= 512))
        throw new TestbedUsageError(`disk size must be 1..512 MiB, got ${src.sizeMiB}`);
      await this.execOk(`rm -f ${path} && truncate -s ${src.sizeMiB}M ${path}`, `creating disk ${name}`);
    }
    return path;
  }

  /** The current contents of a dom0 disk (read it after the guest using it stopped). */
  async readDisk(name: string): Promise<Buffer> {
    checkName(name, "disk name");
    const x = `read-${name}-${this.nextId}`;
    await this.execOk(`cp /tmp/disks/${name}.img ${DOM0_SHARE}/xfer/${x}`, `reading disk ${name}`, 600);
    const host = join(this.shareDir, "xfer", x);
    try {
      return readFileSync(host);
    } finally {
      rmSync(host, { force: true });
    }
  }

  /** `xl save`: suspends a running guest into a dom0 file (its run then ends as "saved"). Returns the file's dom0 path. */
  async save(domain: string, timeoutS = 180): Promise<string> {
    checkName(domain, "domain");
    const file = `/tmp/${domain}.save`;
    // the marker tells run-guest that the domain left by xl save, not by vanishing (it polls, and may miss the suspend)
    await this.execOk(`touch /run/saving-${domain} && xl save ${domain} ${file}`, `xl save ${domain}`, timeoutS);
    return file;
  }

  /** `xl restore` of a saved guest, watched like a launched one. */
  restore(file: string, spec: Omit<GuestSpec, "config" | "configText" | "kernel" | "disks"> & { domain: string }): RunningGuest {
    if (!/^\/tmp\/[A-Za-z0-9_.-]+\.save$/.test(file)) throw new TestbedUsageError(`not a save file from save(): ${file}`);
    checkName(spec.domain, "domain");
    return this.watch(spec.domain, spec, `restore ${file}`);
  }

  /** Starts a guest; `result` settles when it stopped, timed out, or failed to be created. */
  launch(spec: GuestSpec): RunningGuest {
    const { domain, dom0Config } = this.stageGuest(spec);
    return this.watch(domain, spec, dom0Config);
  }

  /** Runs one guest to its end. */
  run(spec: GuestSpec): Promise<GuestResult> {
    return this.launch(spec).result;
  }

  /** Runs several guests at the same time. */
  runMany(specs: GuestSpec[]): Promise<GuestResult[]> {
    return Promise.all(specs.map((s) => this.run(s)));
  }

  /** Writes the guest's kernel and rewritten config into the share. */
  private stageGuest(spec: GuestSpec): { domain: string; dom0Config: string } {
    let text: string;
    let base: string;
    if (spec.config) {
      if (!existsSync(spec.config)) throw new TestbedUsageError(`xl config ${spec.config} does not exist`);
      text = readFileSync(spec.config, "utf8");
      base = dirname(resolve(spec.config));
    } else if (spec.configText !== undefined) {
      text = spec.configText;
      base = resolve(spec.baseDir ?? ".");
    } else throw new TestbedUsageError("a guest needs `config` (an .xl file) or `configText`");
    let entries: XlEntry[];
    try {
      entries = parseXl(text);
    } catch (e) {
      if (e instanceof XlConfigError) throw new TestbedUsageError(`${spec.config ?? "xl config"}: ${e.message}`);
      throw e;
    }
    const get = (k: string) => entries.find((e) => e.key === k)?.value;
    const baseName = (spec.name ?? xlStringValue(get("name")) ?? "guest").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40);
    const domain = `${baseName}-${++this.runSeq}`;
    const kernelHost = spec.kernel ?? xlStringValue(get("kernel"));
    if (!kernelHost) throw new TestbedUsageError(`${spec.config ?? "xl config"} has no kernel = "..." and no kernel was given`);
    const kernelPath = resolve(base, kernelHost);
    if (!existsSync(kernelPath)) throw new TestbedUsageError(`kernel image ${kernelPath} does not exist (run npm run build:image?)`);
    const gdir = join(this.shareDir, "guests", domain);
    mkdirSync(gdir, { recursive: true });
    copyFileSync(kernelPath, join(gdir, "kernel"));
    const g0 = `${DOM0_SHARE}/guests/${domain}`;
    const set = (key: string, value: string) => {
      const e = entries.find((x) => x.key === key);
      if (e) e.value = value;
      else entries.push({ key, value });
    };
    set("name", xlQuote(domain));
    set("kernel", xlQuote(`${g0}/kernel`));
    const ramdisk = xlStringValue(get("ramdisk"));
    if (ramdisk) {
      const rd = resolve(base, ramdisk);
      if (!existsSync(rd)) throw new TestbedUsageError(`ramdisk ${rd} does not exist`);
      copyFileSync(rd, join(gdir, "ramdisk"));
      set("ramdisk", xlQuote(`${g0}/ramdisk`));
    }
    if (spec.extra !== undefined) set("extra", xlQuote(spec.extra));
    if (spec.memoryMiB !== undefined) set("memory", String(spec.memoryMiB));
    const disks = xlListValue(get("disk"));
    const names = spec.disks ?? [];
    names.forEach((n) => checkName(n, "disk name"));
    if (disks.length > names.length)
      throw new TestbedUsageError(
        `the config has ${disks.length} disk entries (targets: ${disks.map(diskTarget).join(", ")}) but only ` +
          `${names.length} dom0 disks were given: create them with createDisk() and list them in \`disks\``,
      );
    const out = names.map((n, i) =>
      i < disks.length
        ? withDiskTarget(disks[i], `/tmp/disks/${n}.img`)
        : `format=raw, vdev=xvd${String.fromCharCode(97 + i)}, access=rw, target=/tmp/disks/${n}.img`,
    );
    if (out.length) set("disk", xlList(out));
    // vif-bridge needs an explicit bridge; dom0 has xenbr0
    const vifs = xlListValue(get("vif"));
    if (vifs.length) set("vif", xlList(vifs.map((v) => (/bridge\s*=/.test(v) ? v : v ? `${v}, bridge=xenbr0` : "bridge=xenbr0"))));
    // every stop is preserved, so the domain's state and shutdown reason can be read before we destroy it
    entries = entries.filter((e) => !/^on_(poweroff|reboot|watchdog|crash|soft_reset)$/.test(e.key));
    for (const k of ["on_poweroff", "on_reboot", "on_watchdog", "on_crash"]) entries.push({ key: k, value: '"preserve"' });
    writeFileSync(join(gdir, "config.xl"), serializeXl(entries));
    return { domain, dom0Config: `${g0}/config.xl` };
  }

  private watch(domain: string, spec: Pick<GuestSpec, "timeoutS" | "onLine" | "maxConsoleBytes">, cfgOrRestore: string): RunningGuest {
    const timeoutS = spec.timeoutS ?? 60;
    const t0 = Date.now();
    const logPath = join(this.shareDir, "console", `guest-${domain}.log`);
    const tail = new ConsoleTail(logPath, spec.maxConsoleBytes ?? 4 << 20, spec.onLine);
    // a restored domain appends to its earlier log: show only what it prints from now on
    if (cfgOrRestore.startsWith("restore ")) tail.skipExisting();
    const poll = setInterval(() => tail.poll(), 100);
    const restore = cfgOrRestore.startsWith("restore ") ? ` restore ${cfgOrRestore.slice(8)}` : "";
    const cfg = restore ? "-" : cfgOrRestore;
    const result = (async (): Promise<GuestResult> => {
      let out: ExecResult | undefined;
      let err: Error | undefined;
      try {
        // dom0 enforces the guest timeout; our own bound covers a wedged dom0
        out = await this.exec(`/usr/lib/morgana/run-guest ${domain} ${cfg} ${timeoutS}${restore}`, timeoutS + 240);
      } catch (e) {
        err = e as Error;
      }
      clearInterval(poll);
      tail.poll();
      tail.finish();
      const base = {
        domain,
        console: tail.text,
        consoleDroppedBytes: tail.dropped,
        timings: { totalMs: Date.now() - t0, firstLineMs: tail.firstAt ? tail.firstAt - t0 : undefined },
      };
      if (err || !out) {
        return {
          ...base,
          outcome: "testbed-failure",
          exitCode: EXIT_CODE["testbed-failure"],
          verdict: "error",
          detail: (err?.message ?? "no answer").split("\n")[0],
          xl: [],
          dmesg: [],
          xlLog: [],
          testbedLog: err?.message,
        };
      }
      return interpret(out.output, base);
    })();
    return { domain, result };
  }

  /** Powers dom0 off and waits for QEMU to exit (killing it after graceS). Returns total QEMU lifetime in ms. */
  async stop(graceS = 30): Promise<{ totalMs: number }> {
    this.stopping = true;
    if (!this.exited && this.sock && !this.failure) {
      try {
        this.sock.write(`${this.nextId++} ${Buffer.from("sync; poweroff -f").toString("base64")}\n`);
      } catch {
        /* socket gone: the kill below handles it */
      }
    }
    if (!this.exited) {
      await new Promise<void>((res) => {
        const timer = setTimeout(() => {
          this.log(`QEMU still running ${graceS} s after poweroff: killing it`);
          this.kill();
          res();
        }, graceS * 1000);
        this.exitWaiters.push(() => (clearTimeout(timer), res()));
      });
    }
    this.kill();
    rmSync(this.sockDir, { recursive: true, force: true });
    for (const p of this.pending.values()) p.reject(new TestbedError("test bed stopped"));
    this.pending.clear();
    return { totalMs: Date.now() - this.t0 };
  }

  /** QEMU's process group id (its wrapper's pid). */
  get pgid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc && !this.exited && !this.failure;
  }
}

function checkName(n: string, what: string) {
  if (!/^[A-Za-z0-9_.-]{1,60}$/.test(n) || n.startsWith(".") || n.startsWith("-"))
    throw new TestbedUsageError(`bad ${what} ${JSON.stringify(n)}: use letters, digits, _ . - (max 60)`);
}

/** Keeps the 5 newest finished run folders (logs of earlier boots); never touches a live one. */
function pruneRuns() {
  const dir = join(TESTBED_CACHE, "runs");
  if (!existsSync(dir)) return;
  const alive = (r: string) => {
    const pid = Number(/-(\d+)$/.exec(r)?.[1]);
    if (!pid) return false;
    try {
      process.kill(pid, 0); // another process (a parallel test file) may be using its share right now
      return true;
    } catch (e: any) {
      return e.code === "EPERM";
    }
  };
  const done = readdirSync(dir)
    .sort()
    .filter((r) => !alive(r));
  for (const r of done.slice(0, Math.max(0, done.length - 5))) rmSync(join(dir, r), { recursive: true, force: true });
}

/** Follows a console log that xenconsoled writes onto the share. */
class ConsoleTail {
  text = "";
  dropped = 0;
  firstAt?: number;
  private off = 0;
  private partial = "";
  constructor(
    private path: string,
    private max: number,
    private onLine?: (l: string) => void,
  ) {}
  skipExisting() {
    try {
      this.off = statSync(this.path).size;
    } catch {
      /* no log yet */
    }
  }
  poll() {
    let fd: number;
    try {
      fd = openSync(this.path, "r");
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.off);
        if (n <= 0) break;
        this.off += n;
        this.firstAt ??= Date.now();
        this.add(buf.subarray(0, n).toString("utf8"));
      }
    } finally {
      closeSync(fd);
    }
  }
  private add(s: string) {
    s = s.replace(/\r\n?/g, "\n");
    const room = this.max - this.text.length;
    if (room > 0) this.text += s.slice(0, room);
    if (s.length > room) this.dropped += s.length - Math.max(0, room);
    if (!this.onLine) return;
    const lines = (this.partial + s).split("\n");
    this.partial = lines.pop() ?? "";
    for (const l of lines) this.onLine(l);
  }
  finish() {
    if (this.partial && this.onLine) this.onLine(this.partial);
    this.partial = "";
  }
}

const REASON: Record<number, Outcome> = { 0: "poweroff", 1: "reboot", 3: "crash", 4: "watchdog" };

/** Turns run-guest's report into a GuestResult. */
export function interpret(report: string, base: Pick<GuestResult, "domain" | "console" | "consoleDroppedBytes" | "timings">): GuestResult {
  const xl: string[] = [],
    dmesg: string[] = [],
    xlLog: string[] = [];
  let outcome: GuestOutcome = "testbed-failure";
  let detail = "run-guest gave no result";
  let state: string | undefined, reason: number | undefined, domid: number | undefined;
  let createMs: number | undefined;
  for (const line of report.split("\n")) {
    let m: RegExpExecArray | null;
    if (line.startsWith("xl: ")) xl.push(line.slice(4));
    else if (line.startsWith("dmesg: ")) dmesg.push(line.slice(7));
    else if (line.startsWith("xllog: ")) xlLog.push(line.slice(7));
    else if ((m = /^create-failed (\d+)$/.exec(line))) {
      outcome = "create-failed";
      const msgs = xl.filter((l) => !/^Parsing config from/.test(l));
      detail = `xl create failed (status ${m[1]}): ${msgs.join(" | ") || "no message"}`;
    } else if ((m = /^created (-?\d+) (\d+) (\d+)$/.exec(line))) {
      domid = Number(m[1]) >= 0 ? Number(m[1]) : undefined;
      createMs = (Number(m[3]) - Number(m[2])) * 10;
    } else if ((m = /^stopped (\S+) (\S+) \d+$/.exec(line))) {
      state = m[1];
      reason = /^[0-9a-f]+$/i.test(m[2]) ? parseInt(m[2], 16) : undefined;
      outcome = state.includes("c") ? "crash" : reason !== undefined && REASON[reason] ? REASON[reason] : "crash";
      detail = `${outcome}: domain stopped, xl list state ${state}, shutdown reason ${reason ?? "unknown"}`;
    } else if ((m = /^timeout (\S+) \d+$/.exec(line))) {
      state = m[1];
      outcome = "timeout";
      detail = `timeout: the guest was still ${state} at the deadline${base.console ? "" : " and never printed"}`;
    } else if (/^vanished \d+$/.test(line)) {
      outcome = "testbed-failure";
      detail = "the domain disappeared without a shutdown reason (destroyed from outside?)";
    } else if (/^xl-list-failed \d+$/.test(line)) {
      outcome = "testbed-failure";
      detail = `xl list kept failing in dom0: ${xl.slice(-2).join(" | ")}`;
    } else if (/^saved \d+$/.test(line)) {
      outcome = "saved";
      detail = "saved: xl save took the domain";
    }
  }
  const r: GuestResult = {
    ...base,
    domid,
    outcome,
    detail,
    state,
    shutdownReason: reason,
    xl,
    dmesg,
    xlLog,
    exitCode: outcome === "saved" ? 0 : EXIT_CODE[outcome],
    verdict: verdictOf(outcome, base.console),
    timings: { ...base.timings, createMs },
  };
  return r;
}

/** XTF-style verdict: the guest's one result line, cross-checked with how it ended. */
export function verdictOf(outcome: GuestOutcome, console: string): Verdict {
  if (outcome === "crash") return "crash";
  if (outcome === "timeout") return "timeout";
  const results = console
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^(TEST PASS|FAIL|SKIP)\b/.test(l));
  if (outcome !== "poweroff" || results.length !== 1) return results.some((l) => l.startsWith("FAIL")) ? "fail" : "error";
  return results[0].startsWith("TEST PASS") ? "pass" : results[0].startsWith("SKIP") ? "skip" : "fail";
}
