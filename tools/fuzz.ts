// npm run fuzz -- [--seconds N] [--seed S] [--target blkif|xenstore|disk|netif|frames]... [--replay target:seed]... [--no-build]
// Seeded fuzzing of the storage path against a hostile backend, xenstored and disk
// (tools/fuzz/cases.ts), and of the network path against a hostile netback and hostile
// frames (tools/fuzz/net-cases.ts). Prints each trap, hang or wrong result with the command that
// replays it, then one summary line; exits 1 if there was any.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./lib/paths.ts";
import { fuzz } from "./fuzz/engine.ts";
import { ALL_TARGETS, Target } from "./fuzz/cases.ts";
import { integerOrExit, parseOrExit, reportUsage } from "./lib/cli.ts";

const usage =
  "usage: npm run fuzz -- [--seconds N] [--seed S] [--target blkif|xenstore|disk|netif|frames]... [--replay target:seed]... [--case-timeout S] [--no-build]";
const { values } = parseOrExit("fuzz", usage, {
  options: {
    seconds: { type: "string", default: "300" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    target: { type: "string", multiple: true },
    replay: { type: "string", multiple: true },
    "case-timeout": { type: "string", default: "60" },
    "no-build": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const bad = (message: string): never => {
  reportUsage("fuzz", usage, message);
  process.exit(1);
};
const num = (name: string, v: string, min: number, max?: number) => integerOrExit("fuzz", usage, `--${name}`, v, min, max)!;
const isTarget = (t: string): t is Target => (ALL_TARGETS as readonly string[]).includes(t);
const targets = (values.target ?? [...ALL_TARGETS]).map((t) => {
  if (!isTarget(t)) bad(`--target ${t}: one of ${ALL_TARGETS.join(", ")}`);
  return t as Target;
});
const replay = values.replay?.map((r) => {
  const [t, s] = r.split(":");
  if (!isTarget(t) || s === undefined) return bad(`--replay ${r}: give target:seed, e.g. blkif:123`);
  return { target: t, seed: num("replay", s, 0) };
});
const seconds = num("seconds", values.seconds, 0);
const seed = num("seed", values.seed, 0);
const caseTimeoutS = num("case-timeout", values["case-timeout"], 1, 86400);
// The apps the cases run, built from the current sources (a stale wasm would fuzz old code).
const APPS: Record<Target, string[]> = { blkif: ["blkfuzz"], xenstore: ["xsfuzz"], disk: ["sqlvfs"], netif: ["nettest"], frames: ["echo"] };
const apps = [...new Set([...targets, ...(replay ?? []).map((r) => r.target)].flatMap((t) => APPS[t]))];
if (!values["no-build"])
  execFileSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "tools", "build.ts"), ...apps], {
    cwd: ROOT,
    stdio: "inherit",
  });
const summary = await fuzz({
  seconds,
  seed,
  targets,
  replay,
  caseTimeoutMs: caseTimeoutS * 1000,
  log: (l) => console.log(l),
});
process.exit(summary.failures.length > 0 ? 1 : 0);
