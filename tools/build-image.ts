// npm run build:image -- <app>...: build the Xen PV image images/<app>.xen and its xl
// configuration images/<app>.xl, printing each step and a size report.
import { relative } from "node:path";
import { checkApp, listApps, ROOT, UsageError } from "./lib/paths.ts";
import { buildImage, sizeReport } from "./lib/image.ts";
import { ConfigError } from "./lib/image-config.ts";
import { parseCommandLine, runCli } from "./lib/cli.ts";

const USAGE = "usage: npm run build:image -- <app>...";

async function main(): Promise<number> {
  const { values, positionals } = parseCommandLine({ allowPositionals: true, options: { help: { type: "boolean", short: "h" } } });
  if (values.help) return (console.log(USAGE), 0);
  if (!positionals.length) throw new UsageError(`no app given (the apps are: ${listApps().join(", ")})`);
  for (const app of positionals.map(checkApp)) {
    console.log(`build:image ${app}`);
    const t0 = performance.now();
    const r = await buildImage(app, { log: (l) => console.log(l) });
    console.log(sizeReport(r.sizes));
    console.log(`  -> ${relative(ROOT, r.xen)}, ${relative(ROOT, r.xl)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return 0;
}

runCli("build:image", USAGE, main, (e) => {
  console.error(e instanceof ConfigError ? `build:image: ${e.message}` : ((e as Error).message ?? e));
  return 1;
});
