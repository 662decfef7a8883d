// Compiles every app (release + debug) once before the tests, as `npm run build` does.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../tools/lib/paths.ts";

export default function setup(): void {
  execFileSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "tools", "build.ts")], {
    cwd: ROOT,
    stdio: "inherit",
  });
}
