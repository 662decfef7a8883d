// Runs fuzz cases for a bounded time, each in a worker thread with a wall-clock limit
// (a case that outlives it is a hang), and counts the verdicts.
import { Worker } from "node:worker_threads";
import { ALL_TARGETS, caseSeed, CaseResult, Target, TARGETS, Verdict, VERDICTS } from "./cases.ts";

export interface FuzzOptions {
  /** Wall time for the whole session, shared equally by the targets. */
  seconds: number;
  /** The session seed: case i of a target runs with caseSeed(seed + target index, i). */
  seed: number;
  /** Default: the storage targets (TARGETS); the network ones are NET_TARGETS. */
  targets?: readonly Target[];
  /** A case running longer than this is a hang (every guest deadline is 300 ms; a run takes ~1 s). */
  caseTimeoutMs?: number;
  /** Replay these cases only. */
  replay?: { target: Target; seed: number }[];
  log?: (line: string) => void;
}

export interface FuzzSummary {
  counts: Record<Verdict | "host-error", number>;
  perTarget: Record<string, Record<string, number>>;
  failures: (CaseResult | { target: Target; seed: number; verdict: string; what: string; detail: string })[];
  runs: number;
  line: string;
}

const BAD = new Set(["trap", "hang", "wrong-data", "leak", "host-error"]);

class Runner {
  private worker?: Worker;
  private spawn(): Worker {
    // tsx's loader in the worker: the cases are TypeScript like the rest of tools/.
    const w = new Worker(new URL("./worker-boot.mjs", import.meta.url));
    w.unref();
    return w;
  }
  run(
    target: Target,
    seed: number,
    timeoutMs: number,
  ): Promise<CaseResult | { target: Target; seed: number; verdict: string; what: string; detail: string }> {
    const w = (this.worker ??= this.spawn());
    return new Promise((resolve) => {
      const done = (r: any) => {
        clearTimeout(timer);
        w.off("message", done);
        w.off("error", crashed);
        resolve(r);
      };
      const crashed = (e: Error) => {
        this.worker = undefined;
        done({ target, seed, verdict: "host-error", what: "", detail: `the fuzz worker died: ${e.stack ?? e}` });
      };
      const timer = setTimeout(() => {
        void w.terminate();
        this.worker = undefined;
        done({ target, seed, verdict: "hang", what: "", detail: `no end after ${timeoutMs / 1000} s of wall time` });
      }, timeoutMs);
      w.on("message", done);
      w.on("error", crashed);
      w.postMessage({ target, seed });
    });
  }
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}

export async function fuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const log = o.log ?? (() => {});
  const targets = o.targets ?? TARGETS;
  const timeoutMs = o.caseTimeoutMs ?? 60_000;
  const counts = Object.fromEntries([...VERDICTS, "host-error"].map((v) => [v, 0])) as FuzzSummary["counts"];
  const perTarget: FuzzSummary["perTarget"] = {};
  const failures: FuzzSummary["failures"] = [];
  const runner = new Runner();
  let runs = 0;
  const record = (res: Awaited<ReturnType<Runner["run"]>>) => {
    runs++;
    counts[res.verdict as Verdict]++;
    (perTarget[res.target] ??= {})[res.verdict] = (perTarget[res.target]?.[res.verdict] ?? 0) + 1;
    if (BAD.has(res.verdict)) {
      failures.push(res);
      log(
        `FUZZ ${res.verdict.toUpperCase()}: ${res.target} seed ${res.seed}: ${res.what}\n  ${res.detail}\n  replay: npm run fuzz -- --replay ${res.target}:${res.seed}`,
      );
    }
  };
  try {
    if (o.replay) {
      for (const c of o.replay) {
        const res = await runner.run(c.target, c.seed, timeoutMs);
        log(`${c.target} ${c.seed}: ${res.verdict}: ${res.what}\n  ${res.detail}`);
        record(res);
      }
    } else {
      const share = (o.seconds * 1000) / targets.length;
      for (const [t, target] of targets.entries()) {
        const until = Date.now() + share;
        for (let i = 0; Date.now() < until; i++)
          record(await runner.run(target, caseSeed(o.seed + ALL_TARGETS.indexOf(target), i), timeoutMs));
        void t;
      }
    }
  } finally {
    await runner.close();
  }
  const per = Object.entries(perTarget)
    .map(
      ([t, c]) =>
        `${t} ${Object.entries(c)
          .map(([v, n]) => `${v} ${n}`)
          .join(", ")}`,
    )
    .join("; ");
  const line = `fuzz: ${runs} runs (seed ${o.seed}): ${VERDICTS.map((v) => `${counts[v]} ${v}`).join(", ")}${counts["host-error"] ? `, ${counts["host-error"]} host-error` : ""} [${per}]`;
  log(line);
  return { counts, perTarget, failures, runs, line };
}
