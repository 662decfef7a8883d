// npm run build:image -- <app>...: build the Xen PV image images/<app>.xen and its xl
// configuration images/<app>.xl, printing each step and a size report.
import { relative } from "node:path";
import { checkApp, listApps, ROOT, UsageError } from "./lib/paths.ts";
import { buildImage, sizeReport } from "./lib/image.ts";
import { ConfigError } from "./lib/image-config.ts";

async function main(argv: string[]): Promise<void> {
  if (!argv.length) throw new UsageError(`usage: npm run build:image -- <app>... (the apps are: ${listApps().join(", ")})`);
  for (const app of argv.map(checkApp)) {
    console.log(`build:image ${app}`);
    const t0 = performance.now();
    const r = await buildImage(app, { log: (l) => console.log(l) });
    console.log(sizeReport(r.sizes));
    console.log(`  -> ${relative(ROOT, r.xen)}, ${relative(ROOT, r.xl)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e instanceof UsageError || e instanceof ConfigError ? `build:image: ${e.message}` : e.message ?? e);
  process.exit(1);
});
