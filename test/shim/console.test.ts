// shim/console.c's bounded console-ring wait (ABI.md §3.1), on the host: the file is
// compiled with gcc against a fake hypercall.h and a simulated backend
// (console-host.c). Under Xen the same code talks to xenconsoled.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
let exe = "";

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), "console-host-"));
  copyFileSync(join(ROOT, "shim", "console.c"), join(dir, "console.c"));
  copyFileSync(join(import.meta.dirname, "console-host.c"), join(dir, "console-host.c"));
  // Quoted includes look in the file's own directory first: this hypercall.h makes SCHEDOP_yield a plain call.
  writeFileSync(join(dir, "hypercall.h"), '#include "xen.h"\nlong hypervisor_sched_op(int cmd, void *arg);\n');
  exe = join(dir, "console-host");
  execFileSync("gcc", [
    "-O2",
    "-std=gnu11",
    "-Wall",
    "-Werror",
    "-I",
    join(ROOT, "shim"),
    "-o",
    exe,
    join(dir, "console.c"),
    join(dir, "console-host.c"),
  ]);
});

// The timeout turns an unbounded wait into a failure instead of a hung suite.
const run = (mode: string) => execFileSync(exe, [mode], { encoding: "utf8", timeout: 60_000 }).trimEnd().split("\n");
const MARKER = (n: number) => `\\r\\n[console: ${n} bytes dropped: the console backend stopped reading]\\r\\n`;

describe("shim console ring: a backend that stops consuming", () => {
  test("a full ring is waited on for 5 s of PV-clock time, then output is dropped, counted, and reported once the backend is back", () => {
    expect(run("stopped")).toEqual([
      "yields: 5000", // 1 ms per yield: CONSOLE_STALL_NS
      "in ring: 2048",
      "second write yields: 0", // stalled: no second wait
      `after: ${MARKER(952 + 100)}c\\r\\n`,
    ]);
  });

  test("a slow backend (one byte per yield) loses nothing", () => {
    expect(run("slow")).toEqual(["out: <5000xx>"]);
  });

  test("a corrupt out_cons: one bounded wait, then nothing waits again", () => {
    expect(run("corrupt")).toEqual(["yields: 5000", "then yields: 0"]);
  });

  test("before the PV clock runs, the wait is bounded in yields", () => {
    expect(run("early")).toEqual(["yields: 100000"]);
  });

  test("console_flush writes the marker when the backend is back, even with no output after it", () => {
    expect(run("flush")).toEqual([`flushed: ${MARKER(452)}`]);
  });
});
