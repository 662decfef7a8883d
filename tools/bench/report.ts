// The paper's evaluation (Mirage, HotCloud 2010, §4) as files: results.json (every
// figure), results.md (tables, the set-up and versions) and two plots in the style of
// the paper's Figures 3 and 4 (SVG, no dependencies). Pure functions: the run is in
// tools/bench/paper.ts.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface SqlRow {
  size: number;
  /** Milliseconds for all iterations of this size; undefined when that platform failed. */
  morgana?: number;
  linux?: number;
  harness?: number;
  /** The three runs printed the same final checksum (the same database state). */
  checksumsAgree: boolean;
}

export type Curve = [count: number, ms: number][];

export interface PaperResults {
  date: string;
  mode: "quick" | "full";
  machine: Record<string, string>;
  testbed: Record<string, string>;
  versions: Record<string, string>;
  sql: { iterations: number; rows: SqlRow[] };
  alloc: { strings: number; morgana: Curve; linuxNative: Curve; node: Curve };
  images: { name: string; bytes: number }[];
  linuxImage: { kernel: number; initrd: number };
  boot: {
    morgana: { createToFirstLineMs?: number; entryToMainMs?: number };
    linux: { createToFirstLineMs?: number; entryToMainMs?: number };
  };
  notes: string[];
}

const num = (v: number | undefined, digits = 0) =>
  v === undefined || !Number.isFinite(v)
    ? "—"
    : v.toLocaleString("en-GB", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (a?: number, b?: number) => {
  if (a === undefined || b === undefined || !b) return "—";
  const r = a / b;
  return `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
};
const kib = (n: number) => `${num(n / 1024, 1)} KiB`;

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map((h, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

export function sizeLabel(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

/** results.md */
export function renderMarkdown(r: PaperResults): string {
  const out: string[] = [];
  out.push(`# Morgana vs Linux on Xen — the paper's evaluation, reproduced (${r.date}, ${r.mode} run)`);
  out.push("");
  out.push(
    "Every figure below comes from one run on one machine: Morgana unikernels and a Linux PV domU on the same Xen, in the same test-bed boot, with the same wasm also run in the Node harness. Under QEMU TCG (no hardware virtualisation here) absolute times are far slower than on hardware; the ratios between guests of the same run are what count.",
  );
  out.push("");
  out.push("## SQL stress (paper Figure 3)");
  out.push("");
  out.push(
    `${num(r.sql.iterations)} transactions per record size (insert, update or delete of one record), the whole table read back and compared after every commit. Morgana: SQLite in the unikernel on its block-device VFS over blkfront. Linux: the same SQLite version compiled natively, on ext4, in a Linux PV domU with the same kind of disk. Harness: the unikernel's wasm in Node against the emulated blkback (memory-backed).`,
  );
  out.push("");
  out.push(
    table(
      ["record size", "Morgana (ms)", "Linux domU (ms)", "harness (ms)", "Morgana / Linux", "same final state"],
      r.sql.rows.map((x) => [
        sizeLabel(x.size),
        num(x.morgana),
        num(x.linux),
        num(x.harness),
        ratio(x.morgana, x.linux),
        x.checksumsAgree ? "yes" : "**no**",
      ]),
    ),
  );
  const tot = (k: "morgana" | "linux" | "harness") =>
    r.sql.rows.every((x) => x[k] !== undefined) ? r.sql.rows.reduce((s, x) => s + x[k]!, 0) : undefined;
  out.push(
    `| **total** | ${num(tot("morgana"))} | ${num(tot("linux"))} | ${num(tot("harness"))} | ${ratio(tot("morgana"), tot("linux"))} | |`,
  );
  out.push("");
  out.push("![SQL stress](fig3-sql.svg)");
  out.push("");
  out.push("## Memory allocation (paper Figure 4)");
  out.push("");
  out.push(
    `${num(r.alloc.strings)} strings of 8 to 135 characters, a window of 1,024 kept alive (garbage-collector work), by the same wasm module (assembly/apps/bench, job alloc:N): in the unikernel under Xen, compiled by wasm2c into a native Linux process in the Linux domU, and in Node on the host.`,
  );
  out.push("");
  const lastMs = (c: Curve) => (c.length ? c[c.length - 1][1] : undefined);
  const a = r.alloc;
  out.push(
    table(
      ["platform", "total (ms)", "per string (ns)", "vs unikernel"],
      [
        ["Morgana unikernel (Xen PV)", num(lastMs(a.morgana)), num(perString(a.morgana), 1), "1.00×"],
        [
          "wasm2c native, Linux domU (Xen PV)",
          num(lastMs(a.linuxNative)),
          num(perString(a.linuxNative), 1),
          ratio(lastMs(a.linuxNative), lastMs(a.morgana)),
        ],
        ["Node (host, not under Xen)", num(lastMs(a.node)), num(perString(a.node), 1), ratio(lastMs(a.node), lastMs(a.morgana))],
      ],
    ),
  );
  out.push("");
  out.push("![Allocation](fig4-alloc.svg)");
  out.push("");
  out.push("## Image size");
  out.push("");
  const linuxTotal = r.linuxImage.kernel + r.linuxImage.initrd;
  out.push(
    table(
      ["image", "size", "vs Linux kernel + initramfs"],
      [
        ...r.images.map((i) => [`Morgana: ${i.name}`, kib(i.bytes), ratio(i.bytes, linuxTotal)]),
        ["Linux: kernel (vmlinuz)", kib(r.linuxImage.kernel), ratio(r.linuxImage.kernel, linuxTotal)],
        ["Linux: initramfs (busybox, sqlstress, bench)", kib(r.linuxImage.initrd), ratio(r.linuxImage.initrd, linuxTotal)],
      ],
    ),
  );
  out.push("");
  out.push("## Boot");
  out.push("");
  const b = r.boot;
  out.push(
    table(
      ["", "Morgana (bench image)", "Linux domU", "Morgana / Linux"],
      [
        [
          "xl create → first console line (ms)",
          num(b.morgana.createToFirstLineMs),
          num(b.linux.createToFirstLineMs),
          ratio(b.morgana.createToFirstLineMs, b.linux.createToFirstLineMs),
        ],
        [
          "guest entry → main (ms)",
          num(b.morgana.entryToMainMs, 1),
          num(b.linux.entryToMainMs, 1),
          ratio(b.morgana.entryToMainMs, b.linux.entryToMainMs),
        ],
      ],
    ),
  );
  out.push("");
  out.push(
    "Guest entry → main: Morgana's PV entry point to the app's first statement (guest clock); Linux's kernel start to its init (/proc/uptime at the top of init).",
  );
  out.push("");
  out.push("## Set-up");
  out.push("");
  const kv = (title: string, o: Record<string, string>) => {
    out.push(`**${title}**`);
    out.push("");
    for (const [k, v] of Object.entries(o)) out.push(`- ${k}: ${v}`);
    out.push("");
  };
  kv("Machine", r.machine);
  kv("Test bed", r.testbed);
  kv("Versions", r.versions);
  if (r.notes.length) {
    out.push("## Notes");
    out.push("");
    for (const n of r.notes) out.push(`- ${n}`);
    out.push("");
  }
  out.push(`Reproduce: \`npm run bench -- --paper${r.mode === "full" ? " --full" : ""}\` (see README, "Results").`);
  return out.join("\n") + "\n";
}

function perString(c: Curve): number | undefined {
  if (!c.length) return undefined;
  const [n, ms] = c[c.length - 1];
  return (ms * 1e6) / n;
}

export interface Series {
  name: string;
  points: [number, number][];
  colour: string;
  dash?: string;
}

/** A line chart in the paper's style: axes, ticks, a legend; x optionally logarithmic. */
export function svgChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  series: Series[];
  xTicks?: [number, string][];
}): string {
  const W = 640,
    H = 400,
    L = 70,
    R = 20,
    T = 40,
    B = 60;
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const fx = (x: number) => (o.xLog ? Math.log2(x) : x);
  const x0 = pts.length ? Math.min(...xs.map(fx)) : 0;
  const x1 = pts.length ? Math.max(...xs.map(fx)) : 1;
  const yMax = niceCeil(pts.length ? Math.max(...ys) : 1);
  const sx = (x: number) => L + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - (y / yMax) * (H - T - B);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const g: string[] = [];
  g.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  g.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  g.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`);
  // y grid and ticks
  for (let i = 0; i <= 5; i++) {
    const y = (yMax * i) / 5;
    g.push(`<line x1="${L}" x2="${W - R}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`);
    g.push(`<text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">${fmtTick(y)}</text>`);
  }
  const ticks = o.xTicks ?? [...new Set(xs)].sort((a, b) => a - b).map((x) => [x, fmtTick(x)] as [number, string]);
  for (const [x, label] of ticks) {
    g.push(`<line x1="${sx(x)}" x2="${sx(x)}" y1="${H - B}" y2="${H - B + 5}" stroke="black"/>`);
    g.push(`<text x="${sx(x)}" y="${H - B + 18}" text-anchor="middle">${esc(label)}</text>`);
  }
  g.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`);
  g.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/>`);
  g.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  g.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (p.length) {
      g.push(
        `<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""} points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`,
      );
      for (const [x, y] of p) g.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${s.colour}"/>`);
    }
    const ly = T + 8 + i * 18;
    g.push(
      `<line x1="${L + 12}" x2="${L + 40}" y1="${ly}" y2="${ly}" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`,
    );
    g.push(`<text x="${L + 46}" y="${ly + 4}">${esc(s.name)}${p.length ? "" : " (no data)"}</text>`);
  });
  g.push("</svg>");
  return g.join("\n") + "\n";
}

function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtTick(v: number): string {
  if (v >= 1e6 && v % 1e6 === 0) return `${v / 1e6}M`;
  if (v >= 1e3 && v % 1e3 === 0) return `${v / 1e3}k`;
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}

/** The two figures. */
export function figures(r: PaperResults): { fig3: string; fig4: string } {
  const s = (k: "morgana" | "linux" | "harness") =>
    r.sql.rows.filter((x) => x[k] !== undefined).map((x) => [x.size, x[k]! / 1000] as [number, number]);
  const fig3 = svgChart({
    title: `SQL stress: ${r.sql.iterations.toLocaleString("en-GB")} transactions per record size`,
    xLabel: "record size (bytes, log scale)",
    yLabel: "time (s)",
    xLog: true,
    xTicks: r.sql.rows.map((x) => [x.size, sizeLabel(x.size)]),
    series: [
      { name: "Morgana unikernel (Xen PV)", points: s("morgana"), colour: "#c0392b" },
      { name: "Linux PV domU (native SQLite, ext4)", points: s("linux"), colour: "#2c3e50", dash: "6 4" },
      { name: "same wasm in the Node harness", points: s("harness"), colour: "#7f8c8d", dash: "2 3" },
    ],
  });
  const c = (curve: Curve) => curve.map(([n, ms]) => [n / 1e6, ms / 1000] as [number, number]);
  const fig4 = svgChart({
    title: `Memory allocation: ${(r.alloc.strings / 1e6).toLocaleString("en-GB")} million strings`,
    xLabel: "strings allocated (millions)",
    yLabel: "time (s)",
    series: [
      { name: "Morgana unikernel (Xen PV)", points: c(r.alloc.morgana), colour: "#c0392b" },
      { name: "wasm2c native in a Linux domU (Xen PV)", points: c(r.alloc.linuxNative), colour: "#2c3e50", dash: "6 4" },
      { name: "Node on the host (not under Xen)", points: c(r.alloc.node), colour: "#7f8c8d", dash: "2 3" },
    ],
  });
  return { fig3, fig4 };
}

/** Writes results.json, results.md, fig3-sql.svg, fig4-alloc.svg into dir. */
export function writeResults(dir: string, r: PaperResults): string[] {
  mkdirSync(dir, { recursive: true });
  const { fig3, fig4 } = figures(r);
  const files: [string, string][] = [
    ["results.json", JSON.stringify(r, null, 2) + "\n"],
    ["results.md", renderMarkdown(r)],
    ["fig3-sql.svg", fig3],
    ["fig4-alloc.svg", fig4],
  ];
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return files.map(([n]) => join(dir, n));
}

/**
 * The alloc_ms_at_<n> and alloc_total_ms figures of a bench run, as a curve from (0, 0);
 * alloc_strings, when present, is how many strings alloc_total_ms covers (a partial run).
 */
export function allocCurve(figs: Map<string, number>, strings: number): Curve {
  strings = figs.get("alloc_strings") ?? strings;
  const c: Curve = [[0, 0]];
  for (const [k, v] of figs) {
    const m = /^alloc_ms_at_(\d+)$/.exec(k);
    if (m) c.push([Number(m[1]), v]);
  }
  const total = figs.get("alloc_total_ms");
  if (total !== undefined) c.push([strings, total]);
  return c.sort((a, b) => a[0] - b[0]);
}
