// Runtime benchmarks for `npm run bench`: task switch cost and event-channel
// round trip, measured by the schedbench app inside the guest. This runs it in
// the Node harness; the Xen side boots the same wasm's image with the same
// command line and parses the same "bench:" lines (parseBench).
import { runWasm } from "../harness/run.ts";
import { wasmPath } from "../lib/paths.ts";

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

export interface RuntimeBenchOptions {
  /** Yields per task (two tasks): default 200,000. */
  switches?: number;
  /** Event-channel round trips: default 20,000. */
  roundTrips?: number;
  /** The schedbench wasm (default: build/schedbench.wasm; run npm run build first). */
  wasm?: string;
}

/** The guest command line for the jobs (also what the Xen run passes as extra=). */
export function runtimeBenchCmdline(o: RuntimeBenchOptions = {}): string {
  return `switch:${o.switches ?? 200_000} evtchn:${o.roundTrips ?? 20_000}`;
}

/** Parses "bench: <name> <value> <unit>" lines; throws if the run did not finish. */
export function parseBench(consoleText: string): Figure[] {
  const lines = consoleText.split(/\r?\n/);
  if (!lines.includes("bench: done")) throw new Error(`schedbench did not finish; its console:\n${consoleText}`);
  const failed = lines.find((l) => /^bench: (unknown job|.* failed)/.test(l));
  if (failed) throw new Error(`schedbench: ${failed}`);
  return lines
    .map((l) => /^bench: (\S+) ([0-9.e+-]+) (\S+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1], value: Number(m[2]), unit: m[3] }));
}

/** Runs schedbench in the harness: task_switch_ns and evtchn_round_trip_ns. */
export function runtimeBenchHarness(o: RuntimeBenchOptions = {}): Figure[] {
  const r = runWasm({ wasm: o.wasm ?? wasmPath("schedbench"), name: "schedbench", cmdline: runtimeBenchCmdline(o) });
  if (r.outcome !== "poweroff") throw new Error(`schedbench ended with ${r.detail}:\n${r.console}`);
  return parseBench(r.console);
}
