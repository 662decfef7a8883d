// npm run build [-- app...]: compile every app (or the ones named) to wasm,
// release and debug, into build/.
import { statSync } from "node:fs";
import { relative } from "node:path";
import { listApps, checkApp, ROOT, Flavour } from "./lib/paths.ts";
import { parseCommandLine, runCli } from "./lib/cli.ts";
import { compileApp } from "./lib/asc.ts";
import { loadAppConfig } from "./lib/image-config.ts";
import { buildNative, describeBuild, selectionId } from "./lib/native.ts";

const USAGE = "usage: npm run build [-- app...]";

async function main(): Promise<number> {
  const { values, positionals } = parseCommandLine({ allowPositionals: true, options: { help: { type: "boolean", short: "h" } } });
  if (values.help) return (console.log(USAGE), 0);
  const apps = positionals.length ? positionals.map(checkApp) : listApps();
  const flavours: Flavour[] = ["release", "debug"];
  // Apps with app.json "native" are laid out above their native module's memory: build each selection first.
  const selections = new Map(
    apps
      .map((a) => loadAppConfig(a).native)
      .filter((n) => n.length > 0)
      .map((n) => [selectionId(n), n]),
  );
  for (const names of selections.values()) {
    const s = await buildNative(names, { log: (l) => console.log(l) });
    console.log(
      `built ${relative(ROOT, s.copy).padEnd(32)} ${String(statSync(s.copy).size).padStart(8)} B  ${s.cached ? "cached" : `${s.ms.toFixed(0)} ms`}  (${describeBuild(s)})`,
    );
  }
  // asc is single-threaded: two at a time keeps both cores busy.
  const jobs = apps.flatMap((app) => flavours.map((f) => ({ app, f })));
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { app, f } = jobs[next++];
      const t0 = performance.now();
      const out = await compileApp(app, f);
      const ms = performance.now() - t0;
      console.log(`built ${relative(ROOT, out).padEnd(32)} ${String(statSync(out).size).padStart(8)} B  ${ms.toFixed(0)} ms`);
    }
  };
  await Promise.all([worker(), worker()]);
  return 0;
}

runCli("build", USAGE, main, (e) => (console.error((e as Error).message ?? e), 1));
