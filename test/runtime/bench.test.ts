// The runtime benchmark runs in the harness and yields plausible figures.
import { expect, test } from "vitest";
import { runtimeBenchHarness, parseBench } from "../../tools/bench/runtime.ts";

test("schedbench reports a task switch cost and an event-channel round trip", () => {
  const figs = runtimeBenchHarness({ switches: 20_000, roundTrips: 2_000 });
  const by = Object.fromEntries(figs.map((f) => [f.name, f]));
  expect(Object.keys(by).sort()).toEqual(["evtchn_round_trip_ns", "task_switch_ns"]);
  expect(by.task_switch_ns.unit).toBe("ns");
  expect(by.task_switch_ns.value).toBeGreaterThan(0);
  expect(by.task_switch_ns.value).toBeLessThan(100_000);
  expect(by.evtchn_round_trip_ns.value).toBeGreaterThan(by.task_switch_ns.value); // a round trip includes switches
});

test("a run that did not finish is an error, not a figure", () => {
  expect(() => parseBench("bench: task_switch_ns 1 ns\n")).toThrow(/did not finish/);
});
