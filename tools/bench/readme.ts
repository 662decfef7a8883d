// npx tsx tools/bench/readme.ts results/<dir>
// Rewrites the README's "Results" section from one paper-bench results folder
// (its results.md): the tables and plots are copied, links rebased onto the folder.
// The prose around them (the introduction's first sentences, "Reading it") stays as
// written in the README; only the "Latest:" line and the tables change.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { ROOT } from "../lib/paths.ts";
import { parseOrExit, reportUsage } from "../lib/cli.ts";

const HEAD = "## Results: the paper's evaluation, side by side";

/** The body of a "## name" section of a Markdown text (up to the next "## "). */
function section(md: string, name: RegExp): string {
  const lines = md.split("\n");
  const i = lines.findIndex((l) => l.startsWith("## ") && name.test(l));
  if (i < 0) throw new Error(`results.md has no section matching ${name}: is it a paper-bench results file?`);
  const j = lines.findIndex((l, k) => k > i && l.startsWith("## "));
  return lines
    .slice(i + 1, j < 0 ? undefined : j)
    .join("\n")
    .trim();
}

/** Markdown tables (and image lines) of a section, without its prose. */
function tablesOf(body: string, dir: string): string {
  return body
    .split("\n\n")
    .filter((p) => p.startsWith("|") || p.startsWith("!["))
    .map((p) => p.replace(/\]\((?!https?:)([^)]+)\)/g, (_, f) => `](${dir}/${f})`))
    .join("\n\n");
}

export function readmeSection(readme: string, resultsMd: string, dir: string): string {
  const start = readme.indexOf(HEAD);
  if (start < 0) throw new Error(`README.md has no "${HEAD}" section`);
  const next = readme.indexOf("\n## ", start + HEAD.length);
  const old = readme.slice(start, next < 0 ? undefined : next + 1);
  const title = resultsMd.split("\n")[0];
  const full = /full run\)/.test(title);
  // the introduction up to "Latest:", and "Reading it: ..." to the end, are kept
  const intro = old.slice(0, old.indexOf("Latest:")).trimEnd();
  const readingAt = old.indexOf("Reading it:");
  if (readingAt < 0) throw new Error('the README\'s Results section lost its "Reading it:" paragraph');
  const reading = old.slice(readingAt).trimEnd();
  const tx = /^([\d,]+) transactions per record size/m.exec(section(resultsMd, /^## SQL stress/))?.[1];
  const strings = /^([\d,]+) strings/m.exec(section(resultsMd, /^## Memory allocation/))?.[1];
  if (!tx || !strings) throw new Error("results.md does not say how many transactions and strings it ran");
  const sqlIntro =
    "SQL stress (Figure 3): one insert, update or delete per transaction, the whole table\n" +
    "read back and compared after each commit; all three runs end in the same state.";
  const out = [
    `${intro} Latest: [${dir}](${dir}/results.md)`,
    `(${full ? "the paper's sizes" : "a quick run"}: ${tx} transactions per size, ${strings} strings). QEMU TCG emulates`,
    "the CPU, so absolute times are slow; ratios between guests of the same run count.",
    "",
    sqlIntro,
    "",
    tablesOf(section(resultsMd, /^## SQL stress/), dir),
    "",
    "Allocation (Figure 4): the same wasm (assembly/apps/bench, alloc:N).",
    "",
    tablesOf(section(resultsMd, /^## Memory allocation/), dir),
    "",
    "Image size and boot:",
    "",
    tablesOf(section(resultsMd, /^## Image size/), dir),
    "",
    tablesOf(section(resultsMd, /^## Boot/), dir),
    "",
    reading,
    "",
  ].join("\n");
  return readme.slice(0, start) + out + (next < 0 ? "" : readme.slice(next));
}

if (process.argv[1] && basename(process.argv[1]).startsWith("readme")) {
  const USAGE = "usage: npx tsx tools/bench/readme.ts results/<dir>";
  const { values, positionals } = parseOrExit("readme", USAGE, {
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positionals.length !== 1) {
    reportUsage(
      "readme",
      USAGE,
      positionals.length ? `one results folder at a time (got ${positionals.join(", ")})` : "no results folder given",
    );
    process.exit(1);
  }
  const arg = positionals[0];
  const dir = relative(ROOT, join(process.cwd(), arg)).replace(/\/$/, "");
  const md = join(ROOT, dir, "results.md");
  if (!existsSync(md)) {
    console.error(`${md}: no results.md there (run npm run bench -- --paper first)`);
    process.exit(1);
  }
  const readmePath = join(ROOT, "README.md");
  writeFileSync(readmePath, readmeSection(readFileSync(readmePath, "utf8"), readFileSync(md, "utf8"), dir));
  console.log(`README.md: Results section now shows ${dir}`);
}
