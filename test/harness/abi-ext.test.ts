// The ABI v1 extensions (shim/ABI.md §6–9) at the import boundary, with
// hand-written modules: argument checks and signatures.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { ABI_IMPORTS } from "../../tools/harness/abi.ts";
import { abiModule } from "../helpers/wat.ts";

const IMPORTS = `
  (import "morgana" "store_ring_map" (func $map (param i32) (result i32)))
  (import "morgana" "mem_barrier" (func $mb))`;

/** Traps (a crash) unless the call returns want. */
const expectRc = (call: string, want: number) => `(if (i32.ne ${call} (i32.const ${want})) (then unreachable))`;

describe("store_ring_map (§7)", () => {
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

describe("signatures", () => {
  test("every extension import is in the ABI map with its exact type", () => {
    expect(ABI_IMPORTS).toMatchObject({
      mem_barrier: "() -> ()",
      store_ring_map: "(i32) -> i32",
      evtchn_alloc_unbound: "(i32) -> i32",
      evtchn_bind_interdomain: "(i32, i32) -> i32",
      evtchn_notify: "(i32) -> i32",
      evtchn_mask: "(i32) -> i32",
      evtchn_unmask: "(i32) -> i32",
      evtchn_close: "(i32) -> i32",
      evtchn_poll: "(i32, i32) -> i32",
      gnttab_grant_access: "(i32, i32, i32) -> i32",
      gnttab_end_access: "(i32) -> i32",
      gnttab_map: "(i32, i32, i32, i32) -> i32",
      gnttab_unmap: "(i32) -> i32",
    });
  });

  test("an extension import with the wrong type is refused", () => {
    const m = abiModule(`(import "morgana" "evtchn_poll" (func (param i32) (result i32)))`, "");
    expect(() => runWasm({ wasm: m })).toThrow(/import morgana\.evtchn_poll has type \(i32\) -> i32, but ABI v1 says \(i32, i32\) -> i32/);
  });
});

describe("boot_info (§3.6) names the xenstore and console channels", () => {
  test("store_evtchn and console_evtchn are the ports bound at boot", () => {
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
