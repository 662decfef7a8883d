// The seeded fuzzer (tools/fuzz) for a bounded time: hostile blkif responses, xenstore
// replies and damaged disk images must each end in a clean success with the right data or
// a clear error: never a trap, a hang or wrong data. Longer runs: npm run fuzz -- --seconds N.
// MORGANA_FUZZ_SEED picks another session (each failure prints its replay command).
import { expect, test } from "vitest";
import { fuzz } from "../../tools/fuzz/engine.ts";
import { caseSeed, diskCase, TARGETS } from "../../tools/fuzz/cases.ts";

const SECONDS = 75; // 25 s per target; with the workers' start, under 2 minutes
const seed = Number(process.env.MORGANA_FUZZ_SEED ?? 20261129);

test(`fuzz: blkif responses, xenstore replies, disk images for ${SECONDS} s (seed ${seed}): 0 traps, 0 hangs, 0 wrong data`, async () => {
  const s = await fuzz({ seconds: SECONDS, seed, log: (l) => console.log(l) });
  console.log(s.line);
  expect(s.failures.map((f) => `${f.verdict}: ${f.target} seed ${f.seed}: ${f.what} — ${f.detail}`)).toEqual([]);
  for (const t of TARGETS) {
    const c = s.perTarget[t] ?? {};
    // Enough runs to mean something, and faults that bite: some runs end in a clear error, some pass.
    expect((c.ok ?? 0) + (c["clear-error"] ?? 0), `${t}: ${JSON.stringify(c)}`).toBeGreaterThanOrEqual(20);
    expect(c["clear-error"] ?? 0, `${t}: ${JSON.stringify(c)}`).toBeGreaterThan(0);
    expect(c.ok ?? 0, `${t}: ${JSON.stringify(c)}`).toBeGreaterThan(0);
  }
}, 240_000);

test("the fuzzer sees wrong data where there is some: a disk without block checksums (layout version 1)", () => {
  // Same damage, no checksums: some flipped row bytes come back as data. The checks above could fail.
  const verdicts: string[] = [];
  for (let i = 0; i < 80 && !verdicts.includes("wrong-data"); i++) verdicts.push(diskCase(caseSeed(seed, i), true).verdict);
  expect(verdicts).toContain("wrong-data");
}, 120_000);
