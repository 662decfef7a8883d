// The runtime's console ring writer (runtime/xen/console-ring.ts) against the
// harness's console backend when it stops reading: output beyond the backlog is
// dropped and counted, drain() fails instead of waiting forever, and once the
// backend reads again a marker line says what was lost (shim/ABI.md §10).
import { expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { ConsoleDevice } from "../../tools/harness/console-backend.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

test("a console backend that stops reading: bounded backlog, counted drops, a failing drain, then a marker", () => {
  let dev!: ConsoleDevice;
  const r = runWasm({
    wasm: wasmPath("consolering"),
    cmdline: "stall 100 1024",
    setup: (dom) => {
      dev = new ConsoleDevice(dom, 1, 0); // reads nothing
      dom.xenstored.watch(`/local/domain/${dom.domid}/data/resume`, (p) => {
        if (dom.xenstored.read(p) === "1") dev.budget = Infinity;
      });
    },
  });
  const all = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(4, "0")} of a stopped console...\n`).join("");
  const lines = r.console.trimEnd().split("\n");
  const m = /^written (\d+), dropped (\d+)$/.exec(lines[1]);
  expect(m).not.toBeNull();
  const written = Number(m![1]);
  // The ring (2048 bytes) and the backlog (1024) took what fit, in whole writes; the rest was counted.
  expect(written).toBeGreaterThan(2048);
  expect(written).toBeLessThanOrEqual(2048 + 1024);
  expect(Number(m![2])).toBe(all.length - written);
  const late = "dropped too: nothing has room yet\n";
  const dropped = all.length - written + late.length;
  expect(lines).toEqual([
    "ok 1 connected",
    lines[1],
    `drain: console: the backend consumed nothing for 200 ms (${written} bytes not sent)`,
    "drain: ok",
    `drain: ok, dropped in all ${dropped}`,
    "ok 2 closed",
    "TEST PASS",
  ]);
  expect(dev.text()).toBe(
    all.slice(0, written) + `[console: ${dropped} bytes dropped: the console backend stopped reading]\n` + "after the marker\n",
  );
  expect(dev.errors).toEqual([]);
});
