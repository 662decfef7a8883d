// npm run fuzz -- [--seconds N] [--seed S] [--target blkif|xenstore|disk]... [--replay target:seed]... [--no-build]
// Seeded fuzzing of the storage path against a hostile backend, xenstored and disk
// (tools/fuzz/cases.ts). Prints each trap, hang or wrong result with the command that
// replays it, then one summary line; exits 1 if there was any.
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./lib/paths.ts";
import { fuzz } from "./fuzz/engine.ts";
import { Target, TARGETS } from "./fuzz/cases.ts";

const usage = "usage: npm run fuzz -- [--seconds N] [--seed S] [--target blkif|xenstore|disk]... [--replay target:seed]... [--case-timeout S] [--no-build]";
let values;
try {
  ({ values } = parseArgs({
    strict: true,
    options: {
      seconds: { type: "string", default: "300" },
      seed: { type: "string", default: String(Date.now() % 1_000_000) },
      target: { type: "string", multiple: true },
      replay: { type: "string", multiple: true },
      "case-timeout": { type: "string", default: "60" },
      "no-build": { type: "boolean", default: false },
    },
  }));
} catch (e: any) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
const num = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} ${v}: give a whole number\n${usage}`);
    process.exit(2);
  }
  return n;
};
const isTarget = (t: string): t is Target => (TARGETS as readonly string[]).includes(t);
const targets = (values.target ?? [...TARGETS]).map((t) => {
  if (!isTarget(t)) {
    console.error(`--target ${t}: one of ${TARGETS.join(", ")}\n${usage}`);
    process.exit(2);
  }
  return t;
});
const replay = values.replay?.map((r) => {
  const [t, s] = r.split(":");
  if (!isTarget(t) || s === undefined) {
    console.error(`--replay ${r}: give target:seed, e.g. blkif:123\n${usage}`);
    process.exit(2);
  }
  return { target: t, seed: num("replay", s) };
});
// The apps the cases run, built from the current sources (a stale wasm would fuzz old code).
if (!values["no-build"])
  execFileSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "tools", "build.ts"), "blkfuzz", "xsfuzz", "sqlvfs"], { cwd: ROOT, stdio: "inherit" });
const summary = await fuzz({
  seconds: num("seconds", values.seconds!),
  seed: num("seed", values.seed!),
  targets,
  replay,
  caseTimeoutMs: num("case-timeout", values["case-timeout"]!) * 1000,
  log: (l) => console.log(l),
});
process.exit(summary.failures.length > 0 ? 1 : 0);
