// The Linux baseline of `npm run bench` (the Mirage paper's §4 comparisons, side by
// side in one test-bed boot): a Xen PV domU running Debian's 6.1 kernel (the test
// bed's own vmlinuz) with a small busybox initramfs that runs ONE job and powers off.
//
//   const base = await buildLinuxBaseline();                       // cached by content
//   const r = await runLinuxGuest(tb, { cmd: "sqlstress 50 16,4096", diskMiB: 128 });
//   parseSqlstress(r.output)  /  benchFigures(r.output)
//
// The jobs are the unikernel's workloads as Linux programs (sources in tools/bench/linux/):
//   sqlstress  tools/bench/linux/sqlstress.c: assembly/apps/sqlstress step for step, on
//              the same SQLite amalgamation (tools/lib/sqlite.ts), gcc -O2 -static, unix
//              VFS on ext4, the unikernel's durability pragmas; same checksums.
//   bench      build/bench.wasm itself, translated by wasm2c and linked with
//              tools/bench/linux/wasm-host.c (the Morgana imports for Linux userspace).
// The guest's disk is made exactly as a Morgana image's: a sparse raw file in dom0
// (Testbed.createDisk), `disk = [ 'format=raw, vdev=xvda, access=rw, target=…' ]`,
// attached phy via loop by Xen's block script; the guest formats it ext4 at boot,
// before the job starts (tools/bench/linux/init).
//
// Timings of a run (LinuxRun.timings):
//   createToFirstLineMs  host: run request sent → first console byte (what the unikernel
//                        rows use: GuestResult.timings.firstLineMs)
//   createToInitMs       host: run request sent → init's first line arrived
//   entryToInitMs        guest: the kernel's own clock (/proc/uptime) when /init starts:
//                        kernel entry → first user process, Linux's "entry → main"
//   entryToJobMs         guest: /proc/uptime when the job starts (modules, mkfs, mount done)
//   jobMs                guest: job start → job exit (/proc/uptime, 10 ms resolution)
// Built files live under $MORGANA_CACHE/bench-linux/ (never committed), keyed by content.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, wasmPath } from "../lib/paths.ts";
import { tool, toolVersion } from "../lib/exec.ts";
import { cacheArea, cached, sha256 } from "../lib/cache.ts";
import { amalgamation, headerVersion, SQLITE_INTEGRITY } from "../lib/sqlite.ts";
import { ensureBootFiles, GuestResult, Testbed, TESTBED_CACHE } from "../testbed/testbed.ts";

export const LINUX_SRC = join(ROOT, "tools", "bench", "linux");
export const LINUX_CACHE = cacheArea("bench-linux");
const WASM2C_RT = "/usr/share/wabt/wasm2c";
/** Debian's wasm2c 1.0.32, whose runtime is WASM2C_RT (npx puts other wabt builds first on PATH). */
const WASM2C = "/usr/bin/wasm2c";

/** SQLite's compile-time options for the native build: the default unix VFS, with the
 * unikernel's durability and locking (tools/lib/sqlite.ts SQLITE_DEFINES) where they
 * matter for the workload. The pragmas sqlstress.c sets at open complete them. */
export const SQLITE_NATIVE_DEFINES: [string, string][] = [
  ["-DSQLITE_THREADSAFE=0", "one thread, as in the unikernel: no mutexes"],
  ["-DSQLITE_DEFAULT_LOCKING_MODE=1", "EXCLUSIVE locking, as in the unikernel"],
  ["-DSQLITE_DEFAULT_SYNCHRONOUS=2", "FULL: fsync at every commit, as in the unikernel"],
  ["-DSQLITE_OMIT_WAL", "rollback journal only (journal_mode=DELETE), as in the unikernel"],
  ["-DSQLITE_TEMP_STORE=3", "temporary storage in memory, as in the unikernel"],
  ["-DSQLITE_OMIT_LOAD_EXTENSION", "no dlopen from a static binary"],
  ["-DSQLITE_DEFAULT_FOREIGN_KEYS=1", "as in the unikernel"],
  ["-DSQLITE_DQS=0", "as in the unikernel"],
];

/** This area's keys are 16 hex digits (the layout existing caches have). */
const sha = (...parts: (string | Uint8Array)[]) => sha256(...parts).slice(0, 16);
const fileSha = (f: string) => sha(readFileSync(f));
const isFile = (f: string) => {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
};

/** Makes cache file `out` with `make(tmp)` unless it exists; resolves to `out`. */
async function cachedFile(out: string, make: (tmp: string) => Promise<unknown>): Promise<string> {
  await cached(out, make);
  return out;
}

const gcc = () => toolVersion("gcc");

/** SQLite compiled once for Linux (gcc -O2, static use), cached by amalgamation, options and gcc. */
async function sqliteObject(): Promise<{ obj: string; include: string; version: string }> {
  const src = await amalgamation();
  const defs = SQLITE_NATIVE_DEFINES.map(([d]) => d);
  const obj = join(LINUX_CACHE, `sqlite3-${sha(SQLITE_INTEGRITY, defs.join(" "), await gcc())}.o`);
  await cachedFile(obj, (tmp) =>
    tool("gcc", ["-O2", "-c", ...defs, "-I", src, "-o", tmp, join(src, "sqlite3.c")], "compiling SQLite for Linux"),
  );
  return { obj, include: src, version: headerVersion(src) };
}

/** tools/bench/linux/sqlstress.c as a static x86-64 Linux executable (runs on the host and in the domU). */
export async function sqlstressBinary(): Promise<string> {
  const s = await sqliteObject();
  const c = join(LINUX_SRC, "sqlstress.c");
  const out = join(LINUX_CACHE, `sqlstress-${sha(readFileSync(c), s.obj, SQLITE_NATIVE_DEFINES.join(" "))}`, "sqlstress");
  return cachedFile(out, async (tmp) => {
    await tool(
      "gcc",
      ["-O2", "-static", "-Wall", "-Werror", ...SQLITE_NATIVE_DEFINES.map(([d]) => d), "-I", s.include, "-o", tmp, c, s.obj, "-lm"],
      "building sqlstress",
    );
  });
}

/** The imports wasm-host.c implements (shim/ABI.md §3 minus nothing a compute-only app needs). */
export const WASM_HOST_IMPORTS = ["console_write", "clock_monotonic", "clock_wall", "block", "shutdown", "boot_cmdline", "boot_info"];

/** A Morgana wasm module (default build/bench.wasm) as a static Linux executable: wasm2c + wasm-host.c.
 * Throws, naming it, when the module imports anything wasm-host.c does not provide. */
export async function wasmBinary(wasm = wasmPath("bench"), name = "bench"): Promise<string> {
  if (!existsSync(wasm)) throw new Error(`${wasm} does not exist: run npx tsx tools/build.ts ${name}`);
  const bytes = readFileSync(wasm);
  for (const i of WebAssembly.Module.imports(new WebAssembly.Module(bytes)))
    if (i.module !== "morgana" || i.kind !== "function" || !WASM_HOST_IMPORTS.includes(i.name))
      throw new Error(`${wasm} imports ${i.module}.${i.name}, which tools/bench/linux/wasm-host.c does not implement`);
  const host = join(LINUX_SRC, "wasm-host.c");
  const w2c = await toolVersion(WASM2C);
  const dir = join(LINUX_CACHE, `${name}-${sha(bytes, readFileSync(host), w2c, await gcc())}`);
  return cachedFile(join(dir, name), async (tmp) => {
    const c = join(dir, "app.c");
    mkdirSync(dir, { recursive: true });
    await tool(WASM2C, ["--module-name", "app", wasm, "-o", c], "wasm2c");
    const inc = ["-I", dir, "-I", WASM2C_RT];
    // wasm2c's own output warns (unused helpers): -w for it, -Wall -Werror for ours
    await tool("gcc", ["-O2", "-c", "-w", ...inc, "-o", join(dir, "app.o"), c], "compiling the wasm2c output");
    await tool("gcc", ["-O2", "-c", "-w", ...inc, "-o", join(dir, "rt.o"), join(WASM2C_RT, "wasm-rt-impl.c")], "compiling wasm-rt-impl.c");
    await tool(
      "gcc",
      ["-O2", "-Wall", "-Werror", "-static", ...inc, "-o", tmp, host, join(dir, "app.o"), join(dir, "rt.o"), "-lm"],
      "linking the wasm host",
    );
  });
}

export interface LinuxBaseline {
  /** The guest kernel: the test bed's Debian vmlinuz (the dom0 kernel, as a domU). */
  kernel: string;
  initrd: string;
  /** Bytes: compressed kernel, compressed initramfs, and the two job binaries in it. */
  sizes: { kernel: number; initrd: number; sqlstress: number; bench: number };
  binaries: { sqlstress: string; bench: string };
  sqliteVersion: string;
}

/** The lib/modules/<release> folder of the test bed's kernel (unpacked by tools/testbed/setup.sh). */
export function kernelModules(bootKey: string): string {
  // setup.sh keys root/ by sha256 of the PINS lines (every KEY line but the last)
  const pins = bootKey.trimEnd().split("\n").slice(0, -1).join("\n") + "\n";
  const pkey = createHash("sha256").update(pins).digest("hex").slice(0, 16);
  const mods = join(TESTBED_CACHE, "root", pkey, "lib", "modules");
  if (!existsSync(mods)) throw new Error(`the test bed's unpacked kernel packages are missing (${mods}): run tools/testbed/setup.sh`);
  const rels = readdirSync(mods)
    .filter((d) => existsSync(join(mods, d, "kernel")))
    .sort();
  if (rels.length === 0) throw new Error(`no kernel modules under ${mods}`);
  return join(mods, rels[rels.length - 1]);
}

/** Builds (or finds in the cache) everything the Linux guest needs. */
export async function buildLinuxBaseline(opts: { benchWasm?: string } = {}): Promise<LinuxBaseline> {
  const boot = ensureBootFiles({ quiet: true });
  const [sqlstress, bench] = await Promise.all([sqlstressBinary(), wasmBinary(opts.benchWasm)]);
  const s = await sqliteObject();
  const mods = kernelModules(boot.key);
  const script = join(LINUX_SRC, "build-initramfs.sh");
  const init = join(LINUX_SRC, "init");
  // the host's busybox and mke2fs go into the image (build-initramfs.sh finds them on PATH)
  const hostTool = (name: string) => {
    const p = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"].map((d) => join(d, name)).find((f) => isFile(f));
    return p ? fileSha(p) : "none";
  };
  const key = sha(
    boot.key,
    mods,
    readFileSync(script),
    readFileSync(init),
    fileSha(sqlstress),
    fileSha(bench),
    hostTool("busybox"),
    hostTool("mke2fs"),
  );
  const initrd = join(LINUX_CACHE, `initrd-${key}.cpio.gz`);
  if (!existsSync(initrd)) {
    await cachedFile(initrd, (tmp) => tool("bash", [script, tmp, mods, init, sqlstress, bench], "building the Linux guest's initramfs"));
    // keep the three newest initramfs images (4+ MB each)
    const old = readdirSync(LINUX_CACHE)
      .filter((f) => /^initrd-[0-9a-f]+\.cpio\.gz$/.test(f))
      .map((f) => ({ f, t: statSync(join(LINUX_CACHE, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t)
      .slice(3);
    for (const { f } of old) rmSync(join(LINUX_CACHE, f), { force: true });
  }
  return {
    kernel: boot.vmlinuz,
    initrd,
    sizes: {
      kernel: statSync(boot.vmlinuz).size,
      initrd: statSync(initrd).size,
      sqlstress: statSync(sqlstress).size,
      bench: statSync(bench).size,
    },
    binaries: { sqlstress, bench },
    sqliteVersion: s.version,
  };
}

export interface LinuxJob {
  /** The job: a program in the initramfs and its arguments ("sqlstress 50 16,4096", "bench entry alloc:1000000"). */
  cmd: string;
  /** Give the domain a fresh disk of this size (xvda, formatted ext4 and mounted at /mnt by init). */
  diskMiB?: number;
  /** Guest memory (default 128 MiB). */
  memoryMiB?: number;
  /** Seconds from the end of xl create until the guest counts as hung (default 600). */
  timeoutS?: number;
  onLine?: (line: string) => void;
  /** Seconds after init's "job exit" line after which a domain still not stopped counts as stuck (default 60). */
  stuckAfterS?: number;
  /** A baseline already built (default: buildLinuxBaseline()). */
  baseline?: LinuxBaseline;
}

export interface LinuxRun {
  outcome: GuestResult["outcome"];
  /** pass when the job exited 0 and the domain powered off (plus the job's own TEST PASS if it prints one). */
  ok: boolean;
  /** The job's exit status, when init reported it. */
  jobExit?: number;
  /** The whole console (kernel messages at loglevel 1, init's lines, the job's output). */
  console: string;
  /** Only the job's output (between init's job start and job exit lines). */
  output: string;
  timings: {
    createMs?: number;
    createToFirstLineMs?: number;
    createToInitMs?: number;
    entryToInitMs?: number;
    entryToJobMs?: number;
    jobMs?: number;
    totalMs: number;
  };
  result: GuestResult;
  /** When the domain was still there stuckAfterS after the job's end: dom0's state then (it was destroyed). */
  diagnostics?: string;
}

let diskSeq = 0;

/** The xl config of the Linux guest (no disk line unless `disk`). */
export function linuxXl(b: LinuxBaseline, job: string, memoryMiB = 128, disk = false): string {
  if (/["'\n\\]/.test(job))
    throw new Error(`job ${JSON.stringify(job)}: quotes, backslashes and newlines cannot go on the kernel command line`);
  return (
    [
      `name = "linux-bench"`,
      `type = "pv"`,
      `kernel = "${b.kernel}"`,
      `ramdisk = "${b.initrd}"`,
      `memory = ${memoryMiB}`,
      `vcpus = 1`,
      // everything after "--" is init's argv
      `extra = "console=hvc0 quiet loglevel=1 rdinit=/init -- ${job}"`,
      ...(disk ? [`disk = [ 'format=raw, vdev=xvda, access=rw, target=linux-bench.img' ]`] : []),
    ].join("\n") + "\n"
  );
}

/** Boots the Linux guest once in a running test bed and runs `job.cmd` in it. Never throws for
 * what the guest does (see `outcome`, `ok`); throws for bad jobs and test-bed failures creating the disk. */
export async function runLinuxGuest(tb: Testbed, job: LinuxJob): Promise<LinuxRun> {
  const b = job.baseline ?? (await buildLinuxBaseline());
  let disks: string[] = [];
  if (job.diskMiB) {
    const name = `linux-bench-${process.pid}-${++diskSeq}`;
    await tb.createDisk(name, { sizeMiB: job.diskMiB });
    disks = [name];
  }
  const t0 = Date.now();
  let initAt: number | undefined;
  let stuck: ReturnType<typeof setTimeout> | undefined;
  let diagnostics: string | undefined;
  const running = tb.launch({
    configText: linuxXl(b, job.cmd, job.memoryMiB, disks.length > 0),
    disks,
    timeoutS: job.timeoutS ?? 600,
    onLine: (l) => {
      const t = l.trim();
      if (initAt === undefined && /^linux-bench: init uptime/.test(t)) initAt = Date.now();
      // init powers off right after this line: a domain still around a minute later is stuck
      // somewhere in Xen or dom0; say where, and destroy it rather than wait for the timeout
      if (/^linux-bench: job exit /.test(t) && !stuck)
        stuck = setTimeout(
          async () => {
            const d = running.domain;
            diagnostics = (
              await tb
                .exec(
                  // every command bounded: a dom0 that does not answer exec() in time ends the whole test bed
                  `timeout 20 xl list -v 2>&1; echo; ps -o pid,stat,args | awk '$2 ~ /D/'; echo; dmesg | tail -n 30; ` +
                    `timeout 60 xl destroy ${d} 2>&1`,
                  150,
                )
                .catch((e) => ({ output: String(e) }))
            ).output;
          },
          (job.stuckAfterS ?? 60) * 1000,
        );
      job.onLine?.(l);
    },
  });
  const g = await running.result;
  if (stuck) clearTimeout(stuck);
  if (disks.length) await tb.exec(`rm -f /tmp/disks/${disks[0]}.img`).catch(() => undefined);
  const r = interpretLinux(g, initAt !== undefined ? initAt - t0 : undefined);
  if (diagnostics !== undefined) {
    r.ok = false;
    r.diagnostics = diagnostics;
  }
  return r;
}

/** Reads init's lines out of a Linux guest's result. */
export function interpretLinux(g: GuestResult, createToInitMs?: number): LinuxRun {
  const lines = g.console.split("\n").map((l) => l.replace(/\r$/, ""));
  const num = (rx: RegExp) => {
    for (const l of lines) {
      const m = rx.exec(l.trim());
      if (m) return m.slice(1).map(Number);
    }
    return undefined;
  };
  const init = num(/^linux-bench: init uptime (\d+(?:\.\d+)?)$/)?.[0];
  const start = num(/^linux-bench: job start uptime (\d+(?:\.\d+)?)$/)?.[0];
  const exit = num(/^linux-bench: job exit (\d+) uptime (\d+(?:\.\d+)?)$/);
  const si = lines.findIndex((l) => /^linux-bench: job start /.test(l.trim()));
  const ei = lines.findIndex((l) => /^linux-bench: job exit /.test(l.trim()));
  const output = si >= 0 ? lines.slice(si + 1, ei > si ? ei : undefined).join("\n") : "";
  const failed = lines.some((l) => /^FAIL\b/.test(l.trim()));
  return {
    outcome: g.outcome,
    ok: g.outcome === "poweroff" && exit?.[0] === 0 && !failed,
    jobExit: exit?.[0],
    console: g.console,
    output,
    timings: {
      createMs: g.timings.createMs,
      createToFirstLineMs: g.timings.firstLineMs,
      createToInitMs,
      entryToInitMs: init !== undefined ? init * 1000 : undefined,
      entryToJobMs: start !== undefined ? start * 1000 : undefined,
      jobMs: start !== undefined && exit ? Math.round((exit[1] - start) * 1000) : undefined,
      totalMs: g.timings.totalMs,
    },
    result: g,
  };
}

export interface SqlstressFigures {
  sizes: { size: number; iterations: number; live: number; checksum: number; ms: number }[];
  totalMs?: number;
  pass: boolean;
  failure?: string;
}

/** Parses sqlstress's lines (the AS app's and sqlstress.c's are the same). */
export function parseSqlstress(text: string): SqlstressFigures {
  const sizes: SqlstressFigures["sizes"] = [];
  let totalMs: number | undefined,
    pass = false,
    failure: string | undefined;
  for (const raw of text.split("\n")) {
    const l = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^sqlstress: size (\d+) iterations (\d+) live (\d+) checksum (\d+) ms (\d+)$/.exec(l)))
      sizes.push({ size: +m[1], iterations: +m[2], live: +m[3], checksum: +m[4], ms: +m[5] });
    else if ((m = /^sqlstress: total ms (\d+)$/.exec(l))) totalMs = +m[1];
    else if (l === "TEST PASS") pass = true;
    else if (/^FAIL\b/.test(l)) failure ??= l;
  }
  return { sizes, totalMs, pass: pass && !failure, failure };
}
