// npm start: the quick start's main job. Builds the flagship demo's Xen image — the
// paper's contacts example: @orm types in SQLite on a raw virtual disk — and boots it
// twice under real Xen in the test bed on the same disk: the second boot finds the
// first one's contacts. The disk stays in images/contacts.disk (delete it to start over).
import { spawnSync } from "node:child_process";
import { existsSync, openSync, ftruncateSync, closeSync } from "node:fs";
import { join } from "node:path";
import { IMAGES_DIR, ROOT } from "./lib/paths.ts";
import { parseOrExit } from "./lib/cli.ts";

/** The flagship demo: the app `npm start` boots. */
export const FLAGSHIP = "contacts";
const DISK_MIB = 64;

const USAGE = "usage: npm start (no options: it builds and boots the contacts demo)";
if (parseOrExit("start", USAGE, { options: { help: { type: "boolean", short: "h" } } }).values.help) {
  console.log(USAGE);
  process.exit(0);
}

const tsx = join(ROOT, "node_modules", ".bin", "tsx");
const step = (what: string, script: string, args: string[]): number => {
  console.log(`\n== ${what}`);
  const r = spawnSync(tsx, [join(ROOT, "tools", script), ...args], { cwd: ROOT, stdio: "inherit" });
  return r.status ?? 1;
};

let rc = step(`build the ${FLAGSHIP} image`, "build-image.ts", [FLAGSHIP]);
const disk = join(IMAGES_DIR, `${FLAGSHIP}.disk`);
if (rc === 0 && !existsSync(disk)) {
  // A blank (sparse) disk: the unikernel formats it on first boot.
  const fd = openSync(disk, "w");
  ftruncateSync(fd, DISK_MIB << 20);
  closeSync(fd);
  console.log(`\n== created a blank ${DISK_MIB} MiB disk: images/${FLAGSHIP}.disk`);
}
if (rc === 0)
  rc = step(`boot images/${FLAGSHIP}.xl twice on images/${FLAGSHIP}.disk under Xen 4.17 in the test bed`, "boot.ts", [
    join("images", `${FLAGSHIP}.xl`),
    "--boots",
    "2",
    "--timeout",
    "180",
  ]);
process.exit(rc);
