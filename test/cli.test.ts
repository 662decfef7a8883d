// The command-line tools as a user runs them.
import { describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ROOT } from "../tools/lib/paths.ts";

const tsx = join(ROOT, "node_modules", ".bin", "tsx");
const dev = (...args: string[]) =>
  spawnSync(tsx, [join(ROOT, "tools", "dev.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });

describe("npm run dev", () => {
  test("runs hello with its arguments as the command line, exit 0", () => {
    const r = dev("hello", "one", "two");
    expect(r.stdout).toBe("Hello from Morgana!\ncmdline: one two\nruntime: morgana 0.1.0\n");
    expect(r.status).toBe(0);
  });

  test("crash exits 2 with the trap report on stdout", () => {
    const r = dev("crash", "oob");
    expect(r.status).toBe(2);
    expect(r.stdout).toContain("TRAP: out of bounds memory access\n  at assembly/apps/crash/main/descend\n");
    expect(r.stderr).toContain("crash: wasm trap: out of bounds memory access");
  });

  test("an unknown app is a clear error, exit 1", () => {
    const r = dev("no-such-app");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('unknown app "no-such-app": there is no assembly/apps/no-such-app/main.ts');
    expect(r.stderr).toContain("hello");
  });

  test("a malformed wasm file is a clear error, exit 1", () => {
    const f = join(mkdtempSync(join(tmpdir(), "morgana-")), "bad.wasm");
    writeFileSync(f, Buffer.from("0061736d02000000", "hex")); // right magic, wrong version
    const r = dev("--wasm", f);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.wasm is not a valid wasm module: .*version/i);
  });
});

// Every command line goes through util.parseArgs in strict mode (tools/lib/cli.ts): a flag the
// tool does not know, or a number that is not one, is refused before any work starts.
const cli = (script: string, ...args: string[]) =>
  spawnSync(tsx, [join(ROOT, "tools", script), ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });

describe("command lines", () => {
  test.each([
    ["build.ts", "build"],
    ["build-image.ts", "build:image"],
    ["dev.ts", "dev"],
    ["boot.ts", "boot"],
    ["bench.ts", "bench"],
    ["fuzz.ts", "fuzz"],
    ["start.ts", "start"],
    ["bench/linux-check.ts", "linux-check"],
    ["bench/readme.ts", "readme"],
  ])("%s refuses an unknown flag with its usage, exit 1", (script, name) => {
    const r = cli(script, "--no-such-flag", "hello");
    expect(r.stderr).toMatch(new RegExp(`^${name}: unknown option --no-such-flag\nusage: `));
    expect(r.stdout).toBe("");
    expect(r.status).toBe(1);
  });

  test.each([
    ["boot.ts", "boot", ["images/hello.xl", "--boots", "two"], "--boots"],
    ["boot.ts", "boot", ["images/hello.xl", "--timeout", "NaN"], "--timeout"],
    ["bench.ts", "bench", ["--paper", "--iterations", "1e3x"], "--iterations"],
    ["fuzz.ts", "fuzz", ["--seconds", "ten"], "--seconds"],
    ["fuzz.ts", "fuzz", ["--case-timeout", "1.5"], "--case-timeout"],
    ["bench/linux-check.ts", "linux-check", ["--alloc", "lots"], "--alloc"],
  ])("%s refuses a number that is not a whole number (%s %j)", (script, name, args, flag) => {
    const r = cli(script, ...args);
    expect(r.stderr).toMatch(new RegExp(`^${name}: ${flag} "[^"]*": give a whole number .*\nusage: `));
    expect(r.stdout).toBe("");
    expect(r.status).toBe(1);
  });

  test("a number out of its range is refused too", () => {
    const r = cli("boot.ts", "images/hello.xl", "--boots", "101");
    expect(r.stderr).toMatch(/^boot: --boots "101": give a whole number from 1 to 100\n/);
    expect(r.status).toBe(1);
  });

  test("dev passes flags after the app to the guest, not to itself", () => {
    const r = dev("hello", "--verbose", "x");
    expect(r.stdout).toContain("cmdline: --verbose x\n");
    expect(r.status).toBe(0);
  });
});

test("the runtime's VERSION is package.json's version", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const src = readFileSync(join(ROOT, "assembly", "runtime", "version.ts"), "utf8");
  expect(src).toContain(`export const VERSION = "${pkg.version}";`);
});
