// Compiles every app (release + debug) once before the tests, as `npm run build` does.
// MORGANA_APPS=a,b compiles only those apps (a quicker loop while working on a few tests).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../tools/lib/paths.ts";

export default function setup(): void {
  const only = (process.env.MORGANA_APPS ?? "").split(",").filter((a) => a.length > 0);
  execFileSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "tools", "build.ts"), ...only], {
    cwd: ROOT,
    stdio: "inherit",
  });
}
