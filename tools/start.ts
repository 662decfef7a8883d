// npm start: the quick start's main job. Builds the flagship demo's Xen image and
// boots it under real Xen in the test bed, showing its console.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./lib/paths.ts";

/** The flagship demo: the app `npm start` boots. */
export const FLAGSHIP = "hello";

const tsx = join(ROOT, "node_modules", ".bin", "tsx");
const step = (what: string, script: string, args: string[]): number => {
  console.log(`\n== ${what}`);
  const r = spawnSync(tsx, [join(ROOT, "tools", script), ...args], { cwd: ROOT, stdio: "inherit" });
  return r.status ?? 1;
};

let rc = step(`build the ${FLAGSHIP} image`, "build-image.ts", [FLAGSHIP]);
if (rc === 0) rc = step(`boot images/${FLAGSHIP}.xl under Xen 4.17 in the test bed`, "boot.ts", [join("images", `${FLAGSHIP}.xl`)]);
process.exit(rc);
