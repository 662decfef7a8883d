// The paper-evaluation report (tools/bench/report.ts): tables, ratios and plots from
// a results object. The figures themselves come from `npm run bench -- --paper`.
import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allocCurve, figures, PaperResults, renderMarkdown, svgChart, writeResults } from "../../tools/bench/report.ts";
import { benchFigures } from "../../tools/bench/table.ts";
import { readmeSection } from "../../tools/bench/readme.ts";

const sample = (): PaperResults => ({
  date: "2026-11-27 10:00 UTC",
  mode: "quick",
  machine: { cpu: "test CPU", cores: "2" },
  testbed: { accel: "QEMU TCG" },
  versions: { sqlite: "3.53.2" },
  sql: {
    iterations: 100,
    rows: [
      { size: 16, morgana: 2000, linux: 1000, harness: 100, checksumsAgree: true },
      { size: 65536, morgana: 9000, linux: 3000, harness: 900, checksumsAgree: false },
    ],
  },
  alloc: {
    strings: 1_000_000,
    morgana: [
      [0, 0],
      [500_000, 400],
      [1_000_000, 800],
    ],
    linuxNative: [
      [0, 0],
      [1_000_000, 1600],
    ],
    node: [],
  },
  images: [{ name: "sqlstress", bytes: 2 * 1024 * 1024 }],
  linuxImage: { kernel: 7 * 1024 * 1024, initrd: 1024 * 1024 },
  boot: { morgana: { createToFirstLineMs: 900, entryToMainMs: 5 }, linux: { createToFirstLineMs: 18000, entryToMainMs: 9000 } },
  notes: ["a note"],
});

describe("paper report", () => {
  test("the Markdown has every table with ratios against the Linux baseline", () => {
    const md = renderMarkdown(sample());
    expect(md).toContain("| 16 B | 2,000 | 1,000 | 100 | 2.00× | yes |");
    expect(md).toContain("| 64 KiB | 9,000 | 3,000 | 900 | 3.00× | **no** |");
    expect(md).toContain("| **total** | 11,000 | 4,000 | 1,000 | 2.75× | |");
    expect(md).toContain("| Morgana unikernel (Xen PV) | 800 | 800.0 | 1.00× |");
    expect(md).toContain("| wasm2c native, Linux domU (Xen PV) | 1,600 | 1,600.0 | 2.00× |");
    expect(md).toContain("| Node (host, not under Xen) | — | — | — |");
    expect(md).toContain("| Morgana: sqlstress | 2,048.0 KiB | 0.25× |");
    expect(md).toContain("| xl create → first console line (ms) | 900 | 18,000 | 0.050× |");
    expect(md).toContain("| guest entry → main (ms) | 5.0 | 9,000.0 | 0.00056× |");
    expect(md).toContain("- sqlite: 3.53.2");
    expect(md).toContain("- a note");
  });

  test("plots: one polyline per series with data, a point per figure, log-scale sizes", () => {
    const { fig3, fig4 } = figures(sample());
    expect(fig3.startsWith("<svg")).toBe(true);
    expect(fig3.match(/<polyline/g)).toHaveLength(3);
    expect(fig3.match(/<circle/g)).toHaveLength(6);
    expect(fig3).toContain(">64 KiB</text>");
    expect(fig4.match(/<polyline/g)).toHaveLength(2); // Node has no data
    expect(fig4).toContain("(no data)");
    // Log scale: 16 B at the left edge, 64 KiB at the right.
    const xs = [...fig3.matchAll(/<circle cx="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(Math.min(...xs)).toBe(70);
    expect(Math.max(...xs)).toBe(620);
    expect(() => svgChart({ title: "empty", xLabel: "x", yLabel: "y", series: [] })).not.toThrow();
  });

  test("writeResults writes the four files; allocCurve reads the bench app's lines", () => {
    const dir = mkdtempSync(join(tmpdir(), "paper-"));
    try {
      const files = writeResults(dir, sample());
      expect(files.map((f) => f.slice(dir.length + 1))).toEqual(["results.json", "results.md", "fig3-sql.svg", "fig4-alloc.svg"]);
      expect(JSON.parse(readFileSync(files[0], "utf8")).sql.iterations).toBe(100);
    } finally {
      rmSync(dir, { recursive: true });
    }
    const figs = benchFigures("bench: alloc_ms_at_200 3.5 ms\nbench: alloc_ms_at_100 1.5 ms\nbench: alloc_total_ms 7 ms\nbench: done\n");
    expect(allocCurve(figs, 300)).toEqual([
      [0, 0],
      [100, 1.5],
      [200, 3.5],
      [300, 7],
    ]);
    // A partial run: the total covers only the strings it says.
    figs.set("alloc_strings", 250);
    expect(allocCurve(figs, 300).pop()).toEqual([250, 7]);
  });
});

describe("the README's Results section (tools/bench/readme.ts)", () => {
  const readme = [
    "# Morgana",
    "",
    "## Results: the paper's evaluation, side by side",
    "",
    "`npm run bench -- --paper` reproduces it. Latest: [results/old](results/old/results.md)",
    "(a quick run). Old text.",
    "",
    "| old | table |",
    "| --- | --- |",
    "| 1 | 2 |",
    "",
    "Reading it: why the numbers are what they are.",
    "",
    "## Latest benchmark figures",
    "",
    "kept",
    "",
  ].join("\n");

  test("takes the tables and plots of a results file, rebases its links, keeps the prose around them", () => {
    const md = renderMarkdown(sample());
    const out = readmeSection(readme, md, "results/2026-11-27-quick");
    expect(out).toContain(
      "`npm run bench -- --paper` reproduces it. Latest: [results/2026-11-27-quick](results/2026-11-27-quick/results.md)",
    );
    expect(out).toContain("(a quick run: 100 transactions per size, ");
    expect(out).not.toContain("| old | table |");
    expect(out).not.toContain("Old text.");
    expect(out).toMatch(/^\| 16 B \| 2,000 \| 1,000 \| 100 \| 2\.00× \| yes \|$/m);
    expect(out).toContain("](results/2026-11-27-quick/fig3-sql.svg)");
    expect(out).toContain("](results/2026-11-27-quick/fig4-alloc.svg)");
    expect(out).toContain("Reading it: why the numbers are what they are.\n\n## Latest benchmark figures\n\nkept\n");
    // applying it twice changes nothing
    expect(readmeSection(out, md, "results/2026-11-27-quick")).toBe(out);
  });

  test("refuses a README without the section and a file that is not a paper-bench result", () => {
    expect(() => readmeSection("# no results here\n", renderMarkdown(sample()), "results/x")).toThrow(/no "## Results/);
    expect(() => readmeSection(readme, "# some other file\n\n## Notes\n", "results/x")).toThrow(/no section matching/);
  });
});
