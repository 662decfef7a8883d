// A fuzz worker thread: runs the cases the main thread sends, one at a time, and posts
// each result. A case that hangs is ended from outside (Worker.terminate): runWasm is
// synchronous, so only another thread can notice that it never returns.
import { parentPort } from "node:worker_threads";
import { runCase, Target } from "./cases.ts";

parentPort!.on("message", (m: { target: Target; seed: number }) => {
  let result;
  try {
    result = runCase(m.target, m.seed);
  } catch (e: any) {
    // A HarnessError or a bug in the fuzzer: not the guest's doing, but never hidden.
    result = { target: m.target, seed: m.seed, verdict: "host-error", what: "", detail: String(e?.stack ?? e) };
  }
  parentPort!.postMessage(result);
});
