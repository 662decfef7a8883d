// Morgana images under real Xen (the test bed: QEMU TCG, Xen 4.17, Debian dom0):
// hello, every trap kind of the crash app, memgrow, the ABI conformance app, and the
// ABI v1 extensions (xsinfo against the real xenstored; the xentest cases that need no
// harness hook), and sqlversion (the SQLite module linked at C level), all in one test-bed boot. The images come from build:image, exactly as
// a user makes them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage } from "../../tools/lib/image.ts";
import { ROOT, wasmPath } from "../../tools/lib/paths.ts";
import { runWasm } from "../../tools/harness/run.ts";
import { ExecResult, GuestResult, GuestSpec, Testbed } from "../../tools/testbed/testbed.ts";

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
    else if (l === "  ...") {
      frames.push("...");
      break;
    } else break;
  }
  return { reason: lines[at].slice(6), frames };
}

/** A dom0 script that waits (≤ 60 s) for `domain` to exist, then runs `then` with $id set. */
function whenDomain(domain: string, then: string): string {
  return `for i in $(seq 600); do id=$(xl domid ${domain} 2>/dev/null) && break; sleep 0.1; done
[ -n "$id" ] || { echo "no domain ${domain}"; exit 1; }
${then}`;
}

describe("images under Xen", () => {
  let tb: Testbed;
  const images: Record<string, string> = {};
  const results = new Map<string, GuestResult>();
  const dom0 = new Map<string, ExecResult>();

  // Runs a guest while a dom0 script (given the guest's domain name) runs beside it.
  async function runBeside(key: string, spec: GuestSpec, script: (domain: string) => string) {
    const g = tb.launch({ name: key, timeoutS: 120, ...spec });
    const [r, x] = await Promise.all([g.result, tb.exec(whenDomain(g.domain, script(g.domain)), 180)]);
    results.set(key, r);
    dom0.set(key, x);
  }

  beforeAll(
    async () => {
      // Build before booting: a build error should not cost a boot.
      for (const app of ["hello", "crash", "memgrow", "conformance", "xsinfo", "xentest", "sqlversion"])
        images[app] = (await buildImage(app)).xl;
      const peer = join(mkdtempSync(join(tmpdir(), "gnt-peer-")), "gnt-peer");
      execFileSync("gcc", ["-static", "-O2", "-Wall", "-o", peer, join(ROOT, "test", "xen", "gnt-peer.c")]);
      tb = await Testbed.start({ quiet: true, readyTimeoutS: BOOT_S });
      copyFileSync(peer, join(tb.shareDir, "xfer", "gnt-peer"));
      // First in the boot, so it is domain 1: the case watches /local/domain/1/data. dom0
      // writes data/w/external once the guest has set data/w/x = 1 and waits for that event.
      await runBeside(
        "xs-watch",
        { config: images.xentest, extra: "xs-watch" },
        () =>
          `d=/local/domain/$id/data/w
for i in $(seq 1200); do [ "$(xenstore-read $d/x 2>/dev/null)" = 1 ] && break; sleep 0.05; done
xenstore-write $d/external x && echo "domid $id"`,
      );
      // Second, so it is domain 2, which dom0's two pages are granted to before it starts
      // (gnt-peer.c: one read-only, one writable); their refs go on its command line.
      const offer = await tb.exec(`rm -f /tmp/gnt-done; /host/xfer/gnt-peer 2 /tmp/gnt-done </dev/null >/tmp/gnt.out 2>&1 &
for i in $(seq 100); do grep -q refs /tmp/gnt.out && break; sleep 0.1; done; cat /tmp/gnt.out`);
      const refs = /^refs (\d+) (\d+)$/m.exec(offer.output);
      if (!refs) throw new Error(`gnt-peer in dom0 did not grant its pages: ${offer.output}`);
      results.set(
        "xentest-gnttab",
        await tb.run({ config: images.xentest, extra: `gnttab ${refs[1]} ${refs[2]}`, name: "xentest-gnttab", timeoutS: 120 }),
      );
      dom0.set(
        "xentest-gnttab",
        await tb.exec("touch /tmp/gnt-done; for i in $(seq 50); do grep -q rw: /tmp/gnt.out && break; sleep 0.1; done; cat /tmp/gnt.out"),
      );
      // Third (domain 3): a write through a read-only mapping of dom0's page.
      const offerRo = await tb.exec(`rm -f /tmp/gnt-done3; /host/xfer/gnt-peer 3 /tmp/gnt-done3 </dev/null >/tmp/gnt3.out 2>&1 &
for i in $(seq 100); do grep -q refs /tmp/gnt3.out && break; sleep 0.1; done; cat /tmp/gnt3.out`);
      const roRef = /^refs (\d+) \d+$/m.exec(offerRo.output)?.[1];
      if (!roRef) throw new Error(`gnt-peer in dom0 did not grant its pages: ${offerRo.output}`);
      results.set(
        "xentest-gnttab-write-ro",
        await tb.run({ config: images.xentest, extra: `gnttab-write-ro ${roRef}`, name: "xentest-gnttab-write-ro", timeoutS: 120 }),
      );
      await tb.exec("touch /tmp/gnt-done3");
      // The guest grants a page to dom0 (gnttab-export): dom0 reads the ref and the guest's
      // domid from its data/export, maps the page with gntdev (gnt-peer.c "map"), checks the
      // pattern, and answers in data/export/dom0 (mapped, then unmapped once the guest has
      // seen end_access fail with -EBUSY and written data/export/guest = check-done).
      await runBeside(
        "xentest-gnttab-export",
        { config: images.xentest, extra: "gnttab-export" },
        () =>
          `d=/local/domain/$id/data/export
for i in $(seq 1200); do ref=$(xenstore-read $d/ref 2>/dev/null) && break; sleep 0.05; done
[ -n "$ref" ] || { echo "no ref published"; exit 1; }
gdom=$(xenstore-read $d/domid); echo "guest says ref $ref domid $gdom; xl says domid $id"
rm -f /tmp/gnt-release; /host/xfer/gnt-peer map $gdom $ref /tmp/gnt-release </dev/null >/tmp/gnt-map.out 2>&1 &
pid=$!
for i in $(seq 100); do grep -q mapped: /tmp/gnt-map.out && break; sleep 0.1; done
grep -q "pattern ok" /tmp/gnt-map.out || { cat /tmp/gnt-map.out; xenstore-write $d/dom0 failed; touch /tmp/gnt-release; exit 1; }
xenstore-write $d/dom0 mapped
for i in $(seq 1200); do [ "$(xenstore-read $d/guest 2>/dev/null)" = check-done ] && break; sleep 0.05; done
echo "guest: $(xenstore-read $d/guest 2>/dev/null)"
touch /tmp/gnt-release; wait $pid; rc=$?
cat /tmp/gnt-map.out; echo "gnt-peer exit $rc"
[ $rc = 0 ] && xenstore-write $d/dom0 unmapped || xenstore-write $d/dom0 failed`,
      );
      // What dom0 says about xsinfo's domain, read while it exists.
      // (xsinfo "hold" waits for data/done before its result: the domain exists until then)
      await runBeside(
        "xsinfo",
        { config: images.xsinfo, extra: "hold" },
        (domain) =>
          `echo "domid: $id"; echo "name: $(xenstore-read /local/domain/$id/name)"; echo "vm: $(xenstore-read /local/domain/$id/vm)"; echo "xl: ${domain}"
xenstore-write /local/domain/$id/data/done 1`,
      );
      const runs: [string, string, string | undefined][] = [
        ["hello", "hello", undefined],
        ["memgrow", "memgrow", undefined],
        ["conformance", "conformance", undefined],
        ["sqlversion", "sqlversion", undefined],
        ["crash-unreachable", "crash", ""],
        ["crash-oob", "crash", "oob"],
        ["crash-div", "crash", "div"],
        ["crash-abort", "crash", "abort"],
        ["crash-stack", "crash", "stack"],
        ["xentest-ring-wrap", "xentest", "ring-wrap"],
        ["xentest-ring-notify", "xentest", "ring-notify"],
        ["xentest-sleepers", "xentest", "sleepers"],
        ["xentest-combinators", "xentest", "combinators"],
        ["xentest-evtchn", "xentest", "evtchn"],
      ];
      for (const [key, app, extra] of runs) results.set(key, await tb.run({ config: images[app], extra, name: key, timeoutS: 120 }));
    },
    (BOOT_S + 900 + 19 * 150) * 1000,
  );

  afterAll(async () => {
    if (tb) await tb.stop();
  }, 60_000);

  it("hello greets, shows its command line and powers off", () => {
    const r = results.get("hello")!;
    expect(r.outcome, summary(r)).toBe("poweroff");
    expect(r.console).toMatch(/^Hello from Morgana!$/m);
    expect(r.console).toMatch(/^cmdline: greetings from the xl config$/m); // app.json → xl extra= → start_info
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

  it("conformance prints exactly what the same wasm prints in the harness", () => {
    const xen = results.get("conformance")!;
    const node = runWasm({ wasm: wasmPath("conformance"), cmdline: "conformance check one two" });
    expect(node.exitCode).toBe(0);
    expect(xen.console).toBe(node.console);
  });

  it("sqlversion: SQLite linked at C level runs SELECT 1+1, RDRAND gives entropy, as in the harness", () => {
    const xen = results.get("sqlversion")!;
    expect(xen.outcome, summary(xen)).toBe("poweroff");
    expect(xen.console).toMatch(/^SQLite 3\.53\.2\nSELECT 1\+1 = 2\n/);
    const node = runWasm({ wasm: wasmPath("sqlversion") });
    expect(xen.console).toBe(node.console); // entropy_fill(16) = 16 on both: the test bed's CPU has RDRAND
  });

  const descend = [
    "assembly/apps/crash/main/descend",
    "assembly/apps/crash/main/descend",
    "assembly/apps/crash/main/descend",
    "assembly/apps/crash/main/descend",
    "~start",
  ];
  for (const [key, reason, frames] of [
    ["crash-unreachable", "unreachable executed", descend],
    ["crash-oob", "out of bounds memory access", descend],
    ["crash-div", "integer divide by zero", descend],
    ["crash-abort", "unreachable executed", ["assembly/runtime/system/morganaAbort", ...descend]],
  ] as const) {
    it(`${key}: prints "TRAP: ${reason}" with the symbolised wasm stack and crashes, as in the harness`, () => {
      const r = results.get(key)!;
      expect(r.outcome, summary(r)).toBe("crash");
      expect(r.shutdownReason).toBe(3);
      expect(trapReport(r.console), summary(r)).toEqual({ reason, frames });
      const node = runWasm({ wasm: wasmPath("crash"), cmdline: key.slice("crash-".length).replace("unreachable", "") });
      expect(r.console).toBe(node.console);
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

  /** The xentest case passed: no failed check, one result line last, a clean poweroff. */
  function expectPass(key: string) {
    const r = results.get(key)!;
    expect(
      r.console.split("\n").filter((l) => l.startsWith("not ok")),
      summary(r),
    ).toEqual([]);
    expect(r.console.trimEnd().split("\n").at(-1), summary(r)).toBe("TEST PASS");
    expect(r.outcome, summary(r)).toBe("poweroff");
    expect(r.verdict).toBe("pass");
  }

  it("xsinfo reads its real domid, name and vm path from xenstore, as dom0 sees them, and its watch fires", () => {
    const r = results.get("xsinfo")!;
    expectPassLine(r);
    const x = dom0.get("xsinfo")!;
    expect(x.status, x.output).toBe(0);
    const said = (text: string, key: string) => new RegExp(`^${key}: (.+)$`, "m").exec(text)?.[1];
    for (const key of ["domid", "name", "vm"])
      expect(said(r.console, key), `${key}\n${summary(r)}\ndom0: ${x.output}`).toBe(said(x.output, key));
    expect(said(r.console, "name")).toBe(r.domain);
    expect(Number(said(r.console, "domid"))).toBe(r.domid);
    expect(said(r.console, "vm")).toMatch(/^\/vm\/[0-9a-f-]{36}$/);
    expect(r.console).toMatch(/^watch xsinfo: data\/xsinfo = .+ was here$/m);
    expect(r.console).toMatch(/^dom0 is done reading$/m);
  });

  it("xentest rings: indices wrap past 2^32; notification hold-off", () => {
    expectPass("xentest-ring-wrap");
    expectPass("xentest-ring-notify");
  });

  it("xentest scheduler: 10,000 sleepers wake in deadline order on Xen's clock; combinators", () => {
    expectPass("xentest-sleepers");
    expect(results.get("xentest-sleepers")!.console).toContain("ok 3 they woke in deadline order");
    expectPass("xentest-combinators");
  });

  it("xentest event channels: loopback notify, mask/unmask without a lost wakeup, poll, close and errors", () => {
    expectPass("xentest-evtchn");
  });

  it("xentest grant tables: mapping dom0's grants (unknown ref, read-only, -EPERM, -ESRCH, -EBUSY, unmap restores the page), and grant_access checks", () => {
    const r = results.get("xentest-gnttab")!;
    expect(r.domid, "dom0 granted its pages to domain 2: the case must be the boot's second guest").toBe(2);
    // Checks 1-17 cover gnttab_map/unmap against dom0's grants and the grant_access
    // argument checks. The rest (dom0 mapping our grant, -EBUSY from end_access) need the
    // case to wait for dom0's answer: it reads data/grant-result once, which only the
    // harness (whose backends run inside the guest's write) has written by then.
    const lines = r.console.split("\n");
    for (let i = 1; i <= 17; i++)
      expect(
        lines.find((l) => l.startsWith(`ok ${i} `)),
        `check ${i}\n${summary(r)}`,
      ).toBeDefined();
    expect(r.console).toContain("ok 5 the mapped page shows dom0's frame");
    expect(r.outcome, summary(r)).toBe("poweroff");
    // The guest's write through its writable mapping reached dom0's page.
    expect(dom0.get("xentest-gnttab")!.output).toContain("rw: guest wrote this");
  });

  it("xentest grant tables: a write through a read-only mapping is a CPU fault (FATAL), not a wasm trap", () => {
    const r = results.get("xentest-gnttab-write-ro")!;
    expect(r.domid, "dom0 granted its page to domain 3: the case must be the boot's third guest").toBe(3);
    expect(r.outcome, summary(r)).toBe("crash");
    expect(r.console).toContain("ok 1 mapped read-only");
    expect(r.console).toMatch(/^FATAL: page fault/m);
    expect(r.console).not.toContain("TRAP:");
    expect(r.console).not.toContain("went unnoticed");
  });

  it("xentest grant tables: dom0 maps the guest's grant (gntdev) and reads its pattern; end_access is -EBUSY while mapped, 0 after", () => {
    const r = results.get("xentest-gnttab-export")!;
    const x = dom0.get("xentest-gnttab-export")!;
    const both = `${summary(r)}\ndom0 (${x.status}): ${x.output}`;
    expectPass("xentest-gnttab-export");
    expect(r.console, both).toContain("end_access while dom0 maps the page is -EBUSY");
    expect(r.console, both).toContain("end_access after dom0 unmapped is 0");
    expect(x.status, both).toBe(0);
    expect(x.output, both).toContain(`guest says ref `);
    expect(x.output, both).toMatch(new RegExp(`domid ${r.domid}; xl says domid ${r.domid}$`, "m"));
    expect(x.output, both).toMatch(/^guest: check-done$/m);
    expect(x.output, both).toMatch(/^mapped: pattern ok \(4096 bytes\)$/m);
    expect(x.output, both).toMatch(/^unmapped$/m);
    expect(x.output, both).toMatch(/^gnt-peer exit 0$/m);
  });

  it("xentest xenstore watches: a write from dom0 (xenstore-write) wakes the blocked guest", () => {
    const r = results.get("xs-watch")!;
    expect(r.domid, "the case watches /local/domain/1: it must be the boot's first guest").toBe(1);
    expect(dom0.get("xs-watch")!.output).toContain("domid 1");
    expectPass("xs-watch");
  });
});

function expectPassLine(r: GuestResult) {
  expect(r.outcome, summary(r)).toBe("poweroff");
  expect(r.verdict, summary(r)).toBe("pass");
  expect(r.console.trimEnd().split("\n").at(-1), summary(r)).toBe("TEST PASS");
}
