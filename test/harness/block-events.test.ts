// block() against the emulated backends (ABI.md §3.4, §8): what counts as an
// event source, so a real deadlock is still reported and a scheduled event is not one.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { abiModule } from "../helpers/wat.ts";

describe("block and event sources (ABI.md §8)", () => {
  const BLOCK = `(import "morgana" "block" (func $block (param i64) (result i32)))`;
  const SHUTDOWN_IMPORT = `(import "morgana" "shutdown" (func $shutdown (param i32) (result i32)))`;

  test("the xenstore channel bound at boot is no event source on its own: still a deadlock", () => {
    const r = runWasm({ wasm: abiModule(BLOCK, `(drop (call $block (i64.const 0x7fffffffffffffff)))`) });
    expect(r.outcome).toBe("timeout");
  });

  test("a scheduled backend event wakes block(no deadline), which returns 1", () => {
    const m = abiModule(
      `${BLOCK} ${SHUTDOWN_IMPORT}`,
      // Reboots only when block() returned 1 (woken by the event); else _start returns: poweroff.
      `(if (i32.eq (call $block (i64.const 0x7fffffffffffffff)) (i32.const 1)) (then (drop (call $shutdown (i32.const 1)))))`,
    );
    const r = runWasm({ wasm: m, setup: (dom) => dom.schedule(dom.monotonicNs() + 5_000_000n, () => dom.storePort.notify()) });
    expect(r.outcome).toBe("reboot");
    expect(r.ms).toBeGreaterThanOrEqual(4);
  });
});
