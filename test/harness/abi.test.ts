// The harness's side of shim/ABI.md, checked with hand-written modules: what it
// refuses, how each shutdown reason and a deadlock end the run, and the argument
// checks of the extensions (§6–9). That the harness's import table matches the spec,
// the runtime and the shim is test/abi/sources.test.ts.
import { describe, expect, test } from "vitest";
import { runWasm, loadModule, HarnessError } from "../../tools/harness/run.ts";
import { abiModule, wat } from "../helpers/wat.ts";

const SHUTDOWN = `(import "morgana" "shutdown" (func $shutdown (param i32) (result i32)))`;

describe("module checks (ABI.md §1)", () => {
  test("bytes that are not wasm are refused with a clear error", () => {
    expect(() => loadModule(new TextEncoder().encode("#!/bin/sh\necho not wasm\n"))).toThrow(/not a valid wasm module: .*magic/i);
  });

  test("a truncated module is refused", () => {
    const good = abiModule("", "");
    expect(() => loadModule(good.slice(0, good.length - 3))).toThrow(HarnessError);
  });

  test("a missing file says to build", () => {
    expect(() => loadModule("/nonexistent/app.wasm")).toThrow(/no such file \(run npm run build\)/);
  });

  test("an import outside the ABI is named in the error", () => {
    const m = abiModule(`(import "env" "seed" (func (result f64)))`, "");
    expect(() => loadModule(m)).toThrow(/import env\.seed \(function\) is not part of the Morgana ABI v1/);
  });

  test("an unknown name in the morgana module is refused", () => {
    const m = abiModule(`(import "morgana" "fork" (func))`, "");
    expect(() => loadModule(m)).toThrow(/import morgana\.fork/);
  });

  test("a module without _start or memory is refused", () => {
    expect(() => loadModule(wat(`(module (memory (export "memory") 1))`))).toThrow(/exports no function "_start"/);
    expect(() => loadModule(wat(`(module (func (export "_start")))`))).toThrow(/exports no memory/);
  });

  test("an ABI import with the wrong signature is refused, naming both types", () => {
    const m = abiModule(`(import "morgana" "shutdown" (func (param i64)))`, "");
    expect(() => runWasm({ wasm: m })).toThrow(/import morgana\.shutdown has type \(i64\) -> \(\), but ABI v1 says \(i32\) -> i32/);
  });

  test("an extension import with the wrong signature is refused too", () => {
    const m = abiModule(`(import "morgana" "evtchn_poll" (func (param i32) (result i32)))`, "");
    expect(() => runWasm({ wasm: m })).toThrow(/import morgana\.evtchn_poll has type \(i32\) -> i32, but ABI v1 says \(i32, i32\) -> i32/);
  });
});

describe("shutdown (ABI.md §3.5)", () => {
  const cases: [number, string, number][] = [
    [0, "poweroff", 0],
    [1, "reboot", 3],
    [3, "crash", 2],
    [4, "watchdog", 5],
  ];
  for (const [reason, outcome, code] of cases) {
    test(`reason ${reason} ends the run as ${outcome}, exit ${code}`, () => {
      const r = runWasm({ wasm: abiModule(SHUTDOWN, `(drop (call $shutdown (i32.const ${reason}))) unreachable`) });
      expect(r.outcome).toBe(outcome);
      expect(r.exitCode).toBe(code);
      expect(r.trap).toBeUndefined(); // shutdown does not return: the unreachable never runs
    });
  }

  test("a bad reason returns -EINVAL and the guest goes on", () => {
    const m = abiModule(
      SHUTDOWN,
      `(if (i32.ne (call $shutdown (i32.const 2)) (i32.const -22)) (then unreachable))
       (drop (call $shutdown (i32.const 1)))`,
    );
    expect(runWasm({ wasm: m }).outcome).toBe("reboot");
  });
});

describe("block (ABI.md §3.4)", () => {
  test("block with no deadline and no event source is reported as a hang", () => {
    const m = abiModule(
      `(import "morgana" "block" (func $block (param i64) (result i32)))`,
      `(drop (call $block (i64.const 0x7fffffffffffffff)))`,
    );
    const r = runWasm({ wasm: m });
    expect(r.outcome).toBe("timeout");
    expect(r.exitCode).toBe(124);
    expect(r.console).toContain("HANG: block() with no deadline and no event source");
  });
});

describe("traps without a name section", () => {
  test("frames are named wasm-function[N]", () => {
    const r = runWasm({ wasm: wat(`(module (memory (export "memory") 1) (func $f unreachable) (func (export "_start") call 0))`) });
    // wabt keeps $-names in the name section only when asked, so these are unnamed.
    expect(r.trap!.reason).toBe("unreachable executed");
    expect(r.trap!.frames[0]).toMatch(/^(wasm-function\[0\]|\$?f)$/);
  });
});

describe("boot information", () => {
  test("a command line longer than start_info can hold is refused", () => {
    expect(() => runWasm({ wasm: abiModule("", ""), cmdline: "x".repeat(1024) })).toThrow(/at most 1023/);
  });

  test("boot_info (§3.6) names the xenstore and console channels: the ports bound at boot", () => {
    const m = abiModule(
      `(import "morgana" "boot_info" (func $bi (param i32 i32) (result i32)))`,
      `(drop (call $bi (i32.const 0) (i32.const 64)))`,
    );
    const r = runWasm({ wasm: m, setup: () => {} });
    const dv = new DataView((r.domain.memory() as ArrayBuffer).slice(0, 64));
    expect(dv.getUint32(40, true)).toBe(r.domain.storePort.guestPort);
    expect(dv.getUint32(44, true)).toBe(r.domain.consolePort.guestPort);
    expect(dv.getBigUint64(32, true)).not.toBe(0n);
  });
});

describe("store_ring_map (§7)", () => {
  const IMPORTS = `
    (import "morgana" "store_ring_map" (func $map (param i32) (result i32)))
    (import "morgana" "mem_barrier" (func $mb))`;
  /** Traps (a crash) unless the call returns want. */
  const expectRc = (call: string, want: number) => `(if (i32.ne ${call} (i32.const ${want})) (then unreachable))`;

  test("misaligned is -EINVAL, outside memory -EFAULT, a second map -EBUSY", () => {
    const m = abiModule(
      IMPORTS,
      `(call $mb)
       ${expectRc("(call $map (i32.const 100))", -22)}
       ${expectRc("(call $map (i32.const 65536))", -14)}
       ${expectRc("(call $map (i32.const 4096))", 0)}
       ${expectRc("(call $map (i32.const 8192))", -16)}
       ${expectRc("(call $map (i32.const 4096))", -16)}`,
    );
    const r = runWasm({ wasm: m });
    expect(r.trap).toBeUndefined();
    expect(r.outcome).toBe("poweroff");
    expect(r.domain.xenstored.attached).toBe(true);
  });
});
