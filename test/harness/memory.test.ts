// The harness's memory.grow refuses where the shim's does (tools/harness/memory.ts), so
// running out of memory is testable without Xen, and the runtime reports it as a clear
// panic (assembly/runtime/oom.ts, via tools/oom/transform.mjs), never a bare trap.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import { EXIT_CODE } from "../../tools/lib/outcome.ts";
import { wat } from "../helpers/wat.ts";

const grown = (console: string) => Number(/failed cleanly after (\d+) pages/.exec(console)?.[1]);

describe("memory.grow stops where the shim's frame pool runs out", () => {
  test("memgrow in 32 MiB gets 497 pages, as under Xen (measured in a 32 MiB domain)", () => {
    const r = runWasm({ wasm: wasmPath("memgrow") });
    expect(r.exitCode, r.console).toBe(0);
    expect(r.console).toMatch(/^TEST PASS$/m);
    expect(grown(r.console)).toBe(497);
  });

  test("the domain's size is per run: 64 MiB gives about 512 pages more, 16 MiB about 256 fewer", () => {
    const at = (memoryMiB: number) => grown(runWasm({ wasm: wasmPath("memgrow"), memoryMiB }).console);
    const big = at(64),
      small = at(16);
    // 16 frames per page, plus an L1 per 32 pages and a larger p2m list: a little less than 512 per 32 MiB.
    expect(big - 497).toBeGreaterThan(500);
    expect(big - 497).toBeLessThan(512);
    expect(497 - small).toBeGreaterThan(245);
    expect(497 - small).toBeLessThan(256);
  });

  test("a larger kernel image leaves fewer pages (imageKiB)", () => {
    const r = runWasm({ wasm: wasmPath("memgrow"), imageKiB: 4096 });
    // 4 MiB more image than memgrow's ~700 KiB: about 3.3 MiB, 53 pages fewer
    expect(497 - grown(r.console)).toBeGreaterThan(48);
    expect(497 - grown(r.console)).toBeLessThan(58);
  });

  test("boot_info.mem_limit is what memory.grow then gets, give or take the page tables", () => {
    const r = runWasm({ wasm: wasmPath("memgrow") });
    const limitKiB = Number(/mem_limit (\d+) KiB/.exec(r.console)?.[1]);
    const gotKiB = grown(r.console) * 64;
    expect(limitKiB).toBeGreaterThanOrEqual(gotKiB);
    expect(limitKiB - gotKiB).toBeLessThan(64 + 4 * 20); // less than a page, plus its L1s
  });

  test("an initial memory larger than the domain is fatal before the app runs, as in the shim", () => {
    const r = runWasm({ wasm: wat(`(module (memory (export "memory") 600) (func (export "_start")))`) });
    expect(r.outcome).toBe("crash");
    expect(r.console).toMatch(
      /^FATAL: mapping the initial wasm memory \(600 pages of 64 KiB; the domain's 32 MiB leave room for \d+\) failed: -12$/m,
    );
  });
});

describe("an app that allocates without bound", () => {
  for (const flavour of ["release", "debug"] as const)
    test(`ends with the out-of-memory panic and the crash exit code (${flavour})`, () => {
      const r = runWasm({ wasm: wasmPath("memhog", flavour) });
      expect(r.exitCode, r.console).toBe(EXIT_CODE.crash);
      expect(r.trap).toBeUndefined(); // a report, not a bare trap
      expect(r.console).not.toMatch(/wasm trap|TEST FAIL/);
      expect(r.console).toMatch(
        /^panic: out of memory: the heap needs \d+ KiB more, but the domain's 32 MiB are used up \(linear memory \d+ KiB: heap and data \d+ KiB, I\/O pages 0 KiB; .*\): give the domain more memory \(app.json "memory", xl `memory =`\) or keep less alive$/m,
      );
      // It kept at least 28 MiB before that: the limit is the domain's, not an early one.
      expect(r.console).toMatch(/^memhog: 28672 KiB kept$/m);
    });

  test("the report counts the I/O pages it took", () => {
    const r = runWasm({ wasm: wasmPath("memhog"), cmdline: "io", memoryMiB: 48 });
    expect(r.exitCode).toBe(EXIT_CODE.crash);
    expect(r.console).toMatch(/the domain's 48 MiB are used up \(linear memory \d+ KiB: heap and data \d+ KiB, I\/O pages 256 KiB;/);
  });
});
