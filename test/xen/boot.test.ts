// Morgana images under real Xen (the test bed: QEMU TCG, Xen 4.17, Debian dom0):
// hello, every trap kind of the crash app, memgrow and the ABI conformance app, all
// in one test-bed boot. The images come from build:image, exactly as a user makes them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImage } from "../../tools/lib/image.ts";
import { GuestResult, Testbed } from "../../tools/testbed/testbed.ts";

const BOOT_S = 420;

function summary(r: GuestResult) {
  return `${r.domain}: ${r.detail}\nconsole:\n${r.console.slice(0, 3000)}\nxl: ${r.xl.join("\n")}\ndmesg: ${r.dmesg.join("\n")}`;
}

/** The trap report of ABI.md §4 in a console: the reason and the frames. */
function trapReport(console: string) {
  const lines = console.split("\n");
  const at = lines.findIndex((l) => l.startsWith("TRAP: "));
  if (at < 0) return null;
  const frames: string[] = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^ {2}at (.+)$/.exec(l);
    if (m) frames.push(m[1]);
    else if (l === "  ...") { frames.push("..."); break; }
    else break;
  }
  return { reason: lines[at].slice(6), frames };
}

describe("images under Xen", () => {
  let tb: Testbed;
  const images: Record<string, string> = {};
  const results = new Map<string, GuestResult>();

  beforeAll(async () => {
    // Build before booting: a build error should not cost a boot.
    for (const app of ["hello", "crash", "memgrow", "conformance"]) images[app] = (await buildImage(app)).xl;
    tb = await Testbed.start({ quiet: true, readyTimeoutS: BOOT_S });
    const runs: [string, string, string | undefined][] = [
      ["hello", "hello", undefined],
      ["memgrow", "memgrow", undefined],
      ["conformance", "conformance", undefined],
      ["crash-unreachable", "crash", ""],
      ["crash-oob", "crash", "oob"],
      ["crash-div", "crash", "div"],
      ["crash-abort", "crash", "abort"],
      ["crash-stack", "crash", "stack"],
    ];
    for (const [key, app, extra] of runs)
      results.set(key, await tb.run({ config: images[app], extra, name: key, timeoutS: 120 }));
  }, (BOOT_S + 900 + 8 * 150) * 1000);

  afterAll(async () => {
    if (tb) await tb.stop();
  }, 60_000);

  it("hello greets, shows its command line and powers off", () => {
    const r = results.get("hello")!;
    expect(r.outcome, summary(r)).toBe("poweroff");
    expect(r.console).toMatch(/^Hello from Morgana!$/m);
    expect(r.console).toMatch(/^cmdline: $/m);
  });

  it("memgrow gets pages until memory.grow fails cleanly, and powers off", () => {
    const r = results.get("memgrow")!;
    expect(r.outcome, summary(r)).toBe("poweroff");
    expect(r.verdict, summary(r)).toBe("pass");
    const got = /failed cleanly after (\d+) pages/.exec(r.console);
    expect(Number(got?.[1])).toBeGreaterThan(400); // a 32 MiB domain: ~497 pages of 64 KiB
  });

  it("conformance passes every ABI check", () => {
    const r = results.get("conformance")!;
    expect(r.outcome, summary(r)).toBe("poweroff");
    expect(r.console).not.toMatch(/^not ok/m);
    expect(r.console).toMatch(/^TEST PASS$/m);
  });

  const descend = ["assembly/apps/crash/main/descend", "assembly/apps/crash/main/descend",
    "assembly/apps/crash/main/descend", "assembly/apps/crash/main/descend", "~start"];
  for (const [key, reason, frames] of [
    ["crash-unreachable", "unreachable executed", descend],
    ["crash-oob", "out of bounds memory access", descend],
    ["crash-div", "integer divide by zero", descend],
    ["crash-abort", "unreachable executed", ["assembly/runtime/system/morganaAbort", ...descend]],
  ] as const) {
    it(`${key}: prints "TRAP: ${reason}" with the symbolised wasm stack and crashes`, () => {
      const r = results.get(key)!;
      expect(r.outcome, summary(r)).toBe("crash");
      expect(r.shutdownReason).toBe(3);
      expect(trapReport(r.console), summary(r)).toEqual({ reason, frames });
    });
  }

  it("crash-abort prints the abort message before the report", () => {
    expect(results.get("crash-abort")!.console).toMatch(/^abort: thrown on purpose at assembly\/apps\/crash\/main\.ts:\d+:\d+$/m);
  });

  it("crash-stack: unbounded recursion is 'call stack exhausted', 32 frames then ...", () => {
    const r = results.get("crash-stack")!;
    expect(r.outcome, summary(r)).toBe("crash");
    const t = trapReport(r.console)!;
    expect(t.reason).toBe("call stack exhausted");
    expect(t.frames).toEqual([...Array(32).fill("assembly/apps/crash/main/recurseForever"), "..."]);
  });
});
