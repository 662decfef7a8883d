// The benchmark report: every Morgana figure beside its baseline from the same
// run, with the ratio. Figures are printed, never asserted.

export interface Row {
  metric: string;
  morgana: number | undefined;
  baseline: number | undefined;
  /** What the baseline is ("same wasm in Node", "Linux PV kernel", "target"...). */
  against: string;
  unit: string;
  /** Whether a smaller figure is better (sizes, times): decides how the ratio reads. */
  lowerIsBetter?: boolean;
}

const fmt = (v: number | undefined): string =>
  v === undefined || !Number.isFinite(v) ? "—" : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3);

/** A Markdown table of the rows; the ratio is morgana / baseline. */
export function renderTable(rows: Row[]): string {
  const head = ["metric", "Morgana", "baseline", "baseline is", "unit", "Morgana / baseline"];
  const body = rows.map((r) => {
    const ratio = r.morgana !== undefined && r.baseline ? r.morgana / r.baseline : undefined;
    return [r.metric, fmt(r.morgana), fmt(r.baseline), r.against, r.unit, ratio === undefined ? "—" : `${ratio.toFixed(3)}×`];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...body.map(line)].join("\n");
}

/** The figures a bench app printed: lines "bench: <name> <value> <unit>". */
export function benchFigures(console: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of console.matchAll(/^bench: ([a-z0-9_]+) (-?[0-9.e+-]+) [a-zA-Z%]+\r?$/gm)) {
    const v = Number(m[2]);
    if (Number.isFinite(v)) out.set(m[1], v);
  }
  return out;
}
