// npm run dev -- <app> [args...]   run an app in the Node harness
// npm run dev -- --wasm FILE [args...]   run a given wasm module
//
// The app is (re)built first when its wasm is missing or older than any source.
// The console goes to stdout; the exit code is the guest's outcome
// (tools/lib/outcome.ts): 0 poweroff, 2 crash, 3 reboot, 124 hang, 1 host error.
import { writeSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, checkApp, wasmPath, UsageError } from "./lib/paths.ts";
import { compileApp } from "./lib/asc.ts";
import { loadAppConfig } from "./lib/image-config.ts";
import { buildSqlite } from "./lib/sqlite.ts";
import { runWasm, HarnessError } from "./harness/run.ts";
import { EXIT_CODE } from "./lib/outcome.ts";

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

async function main(argv: string[]): Promise<number> {
  let wasm: string;
  let name: string;
  let rest: string[];
  if (argv[0] === "--wasm") {
    if (!argv[1]) throw new UsageError("--wasm needs a file");
    [wasm, name, rest] = [argv[1], "guest", argv.slice(2)];
  } else {
    name = checkApp(argv[0]);
    rest = argv.slice(1);
    wasm = wasmPath(name);
    let built = 0;
    try {
      built = statSync(wasm).mtimeMs;
    } catch {}
    const sources = Math.max(newestSource(join(ROOT, "assembly")), statSync(join(ROOT, "asconfig.json")).mtimeMs);
    if (built < sources) await compileApp(name, "release");
    // runWasm is synchronous: the SQLite module (build/sqlite.wasm) must exist first.
    if (loadAppConfig(name).sqlite) await buildSqlite();
  }
  const r = runWasm({ wasm, name, cmdline: rest.join(" "), onConsole: (b) => writeSync(1, b) });
  process.stderr.write(`[harness] ${name}: ${r.detail} (exit ${r.exitCode}, ${r.ms.toFixed(1)} ms)\n`);
  return r.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    const known = e instanceof UsageError || e instanceof HarnessError;
    process.stderr.write(`dev: ${known ? e.message : e.stack ?? e}\n`);
    process.exit(EXIT_CODE["host-error"]);
  },
);
