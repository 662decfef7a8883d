// The harness runs the real apps (the wasm files build:image translates) and
// reports their outcome, console and traps.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

describe("hello", () => {
  test("prints its greeting, command line and version, then powers off", () => {
    const r = runWasm({ wasm: wasmPath("hello"), cmdline: "name=world  --verbose" });
    expect(r.outcome).toBe("poweroff");
    expect(r.exitCode).toBe(0);
    expect(r.console).toBe("Hello from Morgana!\ncmdline: name=world  --verbose\nruntime: morgana 0.1.0\n");
  });

  test("the debug build behaves the same", () => {
    const r = runWasm({ wasm: wasmPath("hello", "debug"), cmdline: "x" });
    expect(r.exitCode).toBe(0);
    expect(r.console).toContain("cmdline: x\n");
  });
});

describe("crash", () => {
  const cases = [
    ["oob", "out of bounds memory access", "assembly/apps/crash/main/descend"],
    ["div", "integer divide by zero", "assembly/apps/crash/main/descend"],
    ["abort", "unreachable executed", "assembly/runtime/system/morganaAbort"],
    ["stack", "call stack exhausted", "assembly/apps/crash/main/recurseForever"],
    ["", "unreachable executed", "assembly/apps/crash/main/"],
  ] as const;

  for (const [kind, reason, innermost] of cases) {
    test(`trap "${kind || "unreachable"}" gives a report naming the function, and a crash exit code`, () => {
      const r = runWasm({ wasm: wasmPath("crash"), cmdline: kind });
      expect(r.outcome).toBe("crash");
      expect(r.exitCode).toBe(2);
      expect(r.trap?.reason).toBe(reason);
      expect(r.trap?.frames[0]).toContain(innermost);
      expect(r.console).toContain(`\nTRAP: ${reason}\n  at ${r.trap!.frames[0]}\n`);
      expect(r.console).not.toContain("still alive");
    });
  }

  test("the report ends at the entry point for a shallow stack", () => {
    const r = runWasm({ wasm: wasmPath("crash"), cmdline: "oob" });
    expect(r.trap!.frames.at(-1)).toBe("~start");
    expect(r.trap!.frames.filter((f) => f.endsWith("/descend")).length).toBe(4);
    expect(r.trap!.truncated).toBe(false);
  });

  test("a deep stack is truncated at 32 frames with a final '...'", () => {
    const r = runWasm({ wasm: wasmPath("crash"), cmdline: "stack" });
    expect(r.trap!.frames.length).toBe(32);
    expect(r.console.trimEnd().endsWith("\n  ...")).toBe(true);
  });

  test("abort prints its message and source position before the report", () => {
    const r = runWasm({ wasm: wasmPath("crash"), cmdline: "abort" });
    expect(r.console).toMatch(/abort: thrown on purpose at assembly\/apps\/crash\/main\.ts:\d+:\d+\nTRAP: unreachable executed\n/);
  });
});

describe("conformance", () => {
  test("every ABI check passes in the harness", () => {
    const r = runWasm({ wasm: wasmPath("conformance"), cmdline: "conformance check one two" });
    expect(r.console).not.toContain("not ok");
    expect(r.console.trimEnd().split("\n").at(-1)).toBe("TEST PASS");
    expect(r.exitCode).toBe(0);
  });

  test("it fails, and says so, when the command line is not the expected one", () => {
    const r = runWasm({ wasm: wasmPath("conformance"), cmdline: "something else" });
    expect(r.console).toContain("not ok 12 the command line arrives unchanged");
    expect(r.console).toMatch(/FAIL: \d+ of \d+ checks failed\n$/);
  });
});
