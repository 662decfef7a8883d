// The Linux baseline of `npm run bench` (tools/bench/linux.ts), host-only parts: the
// native sqlstress (tools/bench/linux/sqlstress.c) against the AssemblyScript app in the
// harness, the wasm2c-native bench wasm, the guest's initramfs, and the parsers. Booting
// the guest under Xen belongs to `npm run bench` (tools/bench/linux-check.ts checks it).
import { beforeAll, describe, expect, test } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runWasm } from "../../tools/harness/run.ts";
import { Disk } from "../../tools/harness/blkback.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import { benchFigures } from "../../tools/bench/table.ts";
import {
  buildLinuxBaseline,
  interpretLinux,
  LINUX_SRC,
  LinuxBaseline,
  linuxXl,
  parseSqlstress,
  wasmBinary,
} from "../../tools/bench/linux.ts";
import type { GuestResult } from "../../tools/testbed/testbed.ts";

let base: LinuxBaseline;
let dir: string;
beforeAll(async () => {
  base = await buildLinuxBaseline(); // a cold cache compiles SQLite with gcc (~1.5 min)
  dir = mkdtempSync(join(tmpdir(), "morgana-linux-bench-"));
  return () => rmSync(dir, { recursive: true, force: true });
}, 15 * 60_000);

/** Runs a host binary; returns its status and stdout. */
function host(bin: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(bin, args, { encoding: "utf8", cwd: dir, timeout: 120_000 });
  return { status: r.status ?? -1, out: r.stdout };
}

/** No program interpreter (the guest has no libc for the jobs): ldd says so. */
function isStatic(bin: string): boolean {
  const r = spawnSync("ldd", [bin], { encoding: "utf8" });
  return /not a dynamic executable/.test(r.stdout + r.stderr);
}

/** The AssemblyScript sqlstress in the harness, on a fresh 128 MiB disk. */
function harnessSqlstress(cmdline: string) {
  const r = runWasm({ wasm: wasmPath("sqlstress"), cmdline, disks: [new Disk({ sectors: 262144 })] });
  expect(r.outcome, r.console).toBe("poweroff");
  return parseSqlstress(r.console);
}

describe("sqlstress.c, native on the host", () => {
  test.each([
    ["30 16,4096,65536"],
    ["20 10,5000,300000 7"], // sizes that are not whole words, a record over 256 KiB, another seed
  ])(
    "prints the AssemblyScript app's checksums for %s",
    (args) => {
      const db = join(dir, "stress.db");
      const r = host(base.binaries.sqlstress, ["-d", db, ...args.split(" ")]);
      expect(r.status, r.out).toBe(0);
      const native = parseSqlstress(r.out);
      const wasm = harnessSqlstress(args);
      expect(native.pass, r.out).toBe(true);
      expect(wasm.pass).toBe(true);
      const strip = (f: typeof native) => f.sizes.map(({ size, iterations, live, checksum }) => ({ size, iterations, live, checksum }));
      expect(strip(native)).toEqual(strip(wasm));
      expect(native.sizes.map((s) => s.size)).toEqual(args.split(" ")[1].split(",").map(Number));
      expect(native.totalMs).toBeGreaterThanOrEqual(0);
      expect(r.out.trim().split("\n").at(-1)).toBe("TEST PASS");
    },
    180_000,
  );

  test("uses ./stress.db without -d, and starts from a fresh database", () => {
    const a = host(base.binaries.sqlstress, ["5", "64"]);
    const b = host(base.binaries.sqlstress, ["5", "64"]); // the second run must not see the first's rows
    expect(a.status, a.out).toBe(0);
    expect(parseSqlstress(b.out).sizes).toEqual(parseSqlstress(a.out).sizes.map((s) => ({ ...s, ms: parseSqlstress(b.out).sizes[0].ms })));
    expect(readFileSync(join(dir, "stress.db")).subarray(0, 16).toString("latin1")).toBe("SQLite format 3\0");
  });

  test.each([[[]], [["x", "16"]], [["10", "16,abc"]], [["10", "0"]], [["10", "16", "-1"]], [["-d", "/nonexistent/dir/x.db", "3", "16"]]])(
    "fails with a FAIL line and status 1 for bad arguments %j",
    (args) => {
      const r = host(base.binaries.sqlstress, args);
      expect(r.status).toBe(1);
      expect(r.out).toMatch(/^FAIL: /m);
      expect(r.out).not.toMatch(/TEST PASS/);
    },
  );

  test("is static and built from SQLite 3.53.2 (the unikernel's amalgamation)", () => {
    expect(base.sqliteVersion).toBe("3.53.2");
    expect(isStatic(base.binaries.sqlstress)).toBe(true);
  });
});

describe("the bench wasm as a Linux executable (wasm2c + wasm-host.c)", () => {
  test("prints the same bench lines as the harness, with the same allocation volume", () => {
    const r = host(base.binaries.bench, ["entry", "alloc:20000"]);
    expect(r.status, r.out).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines.at(-1)).toBe("bench: done");
    const mine = benchFigures(r.out);
    const node = benchFigures(runWasm({ wasm: wasmPath("bench"), cmdline: "entry alloc:20000" }).console);
    expect([...mine.keys()].sort()).toEqual([...node.keys()].sort());
    expect(mine.get("alloc_mib")).toBe(node.get("alloc_mib"));
    expect(mine.get("alloc_ns_per_string")).toBeGreaterThan(0);
    expect(mine.get("entry_to_main_us")).toBeGreaterThan(0);
    expect(mine.get("entry_to_main_us")).toBeLessThan(1e6);
    expect(isStatic(base.binaries.bench)).toBe(true);
  });

  test("passes the command line through boot_cmdline", () => {
    const r = host(base.binaries.bench, ["nonsense"]);
    expect(r.status).toBe(0);
    expect(r.out).toContain("bench: unknown job nonsense\nbench: done\n");
  });

  test("refuses a module whose imports wasm-host.c does not implement, naming the import", async () => {
    await expect(wasmBinary(wasmPath("sqlstress"), "sqlstress")).rejects.toThrow(
      /imports \S+\.\S+, which tools\/bench\/linux\/wasm-host\.c does not implement/,
    );
  });
});

describe("the Linux guest's initramfs", () => {
  const list = () => execFileSync("bash", ["-c", `zcat "$0" | cpio -t --quiet`, base.initrd], { encoding: "utf8" }).split("\n");
  const file = (name: string) =>
    execFileSync("bash", ["-c", `zcat "$0" | cpio -i --quiet --to-stdout "$1"`, base.initrd, name], { maxBuffer: 64 << 20 });

  test("holds init, busybox, e2fsprogs' mke2fs with its libraries, and the two jobs", () => {
    const files = list();
    for (const f of [
      "init",
      "bin/busybox",
      "bin/sh",
      "bin/poweroff",
      "sbin/mke2fs",
      "lib64/ld-linux-x86-64.so.2",
      "lib/x86_64-linux-gnu/libext2fs.so.2",
      "lib/x86_64-linux-gnu/libc.so.6",
      "etc/mtab",
      "bin/sqlstress",
      "bin/bench",
    ])
      expect(files, f).toContain(f);
    expect(files, "busybox's ext2-only mke2fs must not shadow e2fsprogs'").not.toContain("bin/mke2fs");
    expect(file("init").equals(readFileSync(join(LINUX_SRC, "init")))).toBe(true);
    expect(file("bin/sqlstress").equals(readFileSync(base.binaries.sqlstress))).toBe(true);
    expect(file("bin/bench").equals(readFileSync(base.binaries.bench))).toBe(true);
  });

  test("loads xen-blkfront, crc32c and ext4 after its dependencies", () => {
    const order = file("etc/modules.order")
      .toString()
      .trim()
      .split("\n")
      .map((l) => l.replace(/^\/lib\/modules\/|\.ko$/g, ""));
    for (const m of ["xen-blkfront", "crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"]) expect(order).toContain(m);
    for (const dep of ["crc32c_generic", "jbd2", "mbcache", "crc16"]) expect(order.indexOf(dep)).toBeLessThan(order.indexOf("ext4"));
    expect(list()).toEqual(expect.arrayContaining(order.map((m) => `lib/modules/${m}.ko`)));
  });

  test("is cached: a second build returns the same files", async () => {
    const again = await buildLinuxBaseline();
    expect(again.initrd).toBe(base.initrd);
    expect(again.binaries).toEqual(base.binaries);
    expect(base.sizes.initrd).toBeGreaterThan(1 << 20);
    expect(base.sizes.kernel).toBeGreaterThan(1 << 20);
  });
});

describe("the guest's xl config and console", () => {
  test("puts the job after -- on the kernel command line, and a disk only when asked", () => {
    const xl = linuxXl(base, "sqlstress 5 16", 128, true);
    expect(xl).toContain(`extra = "console=hvc0 quiet loglevel=1 rdinit=/init -- sqlstress 5 16"`);
    expect(xl).toContain(`disk = [ 'format=raw, vdev=xvda, access=rw, target=linux-bench.img' ]`);
    expect(xl).toContain(`ramdisk = "${base.initrd}"`);
    expect(linuxXl(base, "bench alloc:5")).not.toMatch(/^disk/m);
    expect(() => linuxXl(base, `bench "x"`)).toThrow(/quotes/);
  });

  const result = (console: string, outcome: GuestResult["outcome"] = "poweroff"): GuestResult => ({
    domain: "linux-bench-1",
    outcome,
    exitCode: 0,
    verdict: "pass",
    detail: "",
    console,
    consoleDroppedBytes: 0,
    xl: [],
    dmesg: [],
    xlLog: [],
    timings: { createMs: 900, firstLineMs: 21000, totalMs: 40000 },
  });

  test("reads init's timings and the job's output", () => {
    const r = interpretLinux(
      result(
        [
          "linux-bench: init uptime 9.97",
          "linux-bench: modules loaded uptime 10.40",
          "linux-bench: job start uptime 12.88",
          "bench: alloc_mib 1.5 MiB",
          "bench: done",
          "linux-bench: job exit 0 uptime 26.28",
          "[   27.1] reboot: System halted",
          "",
        ].join("\n"),
      ),
      21100,
    );
    expect(r.ok).toBe(true);
    expect(r.jobExit).toBe(0);
    expect(r.output).toBe("bench: alloc_mib 1.5 MiB\nbench: done");
    expect(r.timings).toMatchObject({
      createMs: 900,
      createToFirstLineMs: 21000,
      createToInitMs: 21100,
      entryToInitMs: 9970,
      entryToJobMs: 12880,
      jobMs: 13400,
    });
  });

  test("is not ok when the job failed, init failed, or the domain did not power off", () => {
    expect(
      interpretLinux(result("linux-bench: init uptime 1\nlinux-bench: job start uptime 2\nFAIL: x\nlinux-bench: job exit 1 uptime 3\n")).ok,
    ).toBe(false);
    expect(interpretLinux(result("linux-bench: init uptime 1\nFAIL: linux-bench: mke2fs /dev/xvda\n")).ok).toBe(false);
    expect(
      interpretLinux(result("linux-bench: init uptime 1\nlinux-bench: job start uptime 2\nlinux-bench: job exit 0 uptime 3\n", "timeout"))
        .ok,
    ).toBe(false);
  });

  test("parses sqlstress lines", () => {
    const q = parseSqlstress("sqlstress: size 16 iterations 5 live 3 checksum 4294967295 ms 12\nsqlstress: total ms 13\nTEST PASS\n");
    expect(q).toEqual({
      sizes: [{ size: 16, iterations: 5, live: 3, checksum: 4294967295, ms: 12 }],
      totalMs: 13,
      pass: true,
      failure: undefined,
    });
    expect(parseSqlstress("sqlstress: size 16 iterations 5 live 3 checksum 1 ms 12\nFAIL: size 16 iteration 3: boom\n").pass).toBe(false);
  });
});
