// The shim's C stays clang-formatted (.clang-format at the root; clang-format 14 from
// Debian, installed by tools/setup). A file that drifts fails here, named with the line;
// fix it with: clang-format -i <file>.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const C_DIRS = ["shim", "shim/include", "test/shim"];
const files = C_DIRS.flatMap((d) =>
  readdirSync(join(ROOT, d))
    .filter((f) => /\.[ch]$/.test(f))
    .map((f) => join(d, f)),
);

/** clang-format --dry-run --Werror over `args`; throws a clear error when it is not installed. */
function clangFormat(args: string[], input?: string) {
  const r = spawnSync("clang-format", ["--style=file", "--dry-run", "--Werror", ...args], { cwd: ROOT, input, encoding: "utf8" });
  if (r.error)
    throw new Error(`clang-format could not run (${r.error.message}): install it with tools/setup (Debian package clang-format)`);
  return r;
}

describe("shim C formatting", () => {
  test("every C file of shim/ and test/shim/ is as clang-format writes it", () => {
    expect(files).toEqual(expect.arrayContaining(["shim/abi.c", "shim/xen.h", "shim/include/math.h", "test/shim/console-host.c"]));
    const r = clangFormat(files);
    expect(r.stderr, `run: clang-format -i ${files.join(" ")}`).toBe("");
    expect(r.status).toBe(0);
  });

  test("the check fails on misformatted C (read as if it were shim/abi.c)", () => {
    const r = clangFormat(
      ["--assume-filename", join(ROOT, "shim", "abi.c")],
      "int f(int x)\n{\n  if(x)   return 1;\n        return 0;\n}\n",
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/code should be clang-formatted/);
  });
});
