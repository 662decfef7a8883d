// The xenstore client (runtime/xen/xenstore.ts) against a xenstored that never
// answers, answers late, or floods a watch: every request ends by its deadline
// with an exact error, a late reply is never taken for a newer request's, and a
// watch nobody reads keeps memory bounded whatever xenstored sends.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { Domain } from "../../tools/harness/domain.ts";
import { XS } from "../../tools/harness/xs-wire.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

const xbtest = (cmdline: string, setup?: (dom: Domain) => void) => {
  const r = runWasm({ wasm: wasmPath("xbtest"), cmdline, setup });
  return { r, lines: r.console.trimEnd().split("\n") };
};

describe("request deadlines", () => {
  test("a xenstored that never answers: each read fails after its deadline, naming it; the run ends", () => {
    const { r, lines } = xbtest("xs 200 domid name", (dom) => void (dom.xenstored.hostile = { silentFrom: 0 }));
    expect(lines).toEqual([
      "read domid: xenstore read domid: no reply from xenstored in 200 ms",
      "read name: xenstore read name: no reply from xenstored in 200 ms",
      "timeouts=2 late=0 errors=0 in-flight=0",
      "ok 1 ran",
      "TEST PASS",
    ]);
    expect(r.outcome).toBe("poweroff");
    expect(r.domain.xenstored.unanswered).toBe(2);
  });

  test("a reply that comes after its deadline is dropped: the next requests get their own replies (ids match)", () => {
    // xenstored holds the reply to request 0 (read name) and sends it just before the reply to request 1.
    const { r, lines } = xbtest("xs 200 name domid vm", (dom) => void (dom.xenstored.hostile = { hold: [0] }));
    expect(lines).toEqual([
      "read name: xenstore read name: no reply from xenstored in 200 ms",
      'read domid: "1"',
      'read vm: "/vm/6d6f7267-616e-4100-8000-000000000001"',
      "timeouts=1 late=1 errors=0 in-flight=0",
      "ok 1 ran",
      "TEST PASS",
    ]);
    expect(r.outcome).toBe("poweroff");
  });

  test("a late reply that comes on its own (dom0 releases it later) is dropped as well", () => {
    const { lines } = xbtest("xs 100 name domid", (dom) => {
      dom.xenstored.hostile = { hold: [0] };
      dom.schedule(dom.monotonicNs() + 150_000_000n, () => dom.xenstored.releaseHeld());
    });
    expect(lines.slice(0, 3)).toEqual([
      "read name: xenstore read name: no reply from xenstored in 100 ms",
      'read domid: "1"',
      "timeouts=1 late=1 errors=0 in-flight=0",
    ]);
  });

  test("after 64 requests left unanswered the connection is given up: later requests fail at once, saying why", () => {
    const keys = Array.from({ length: 68 }, (_, i) => `k${i}`).join(" ");
    const { r, lines } = xbtest(`xs 10 ${keys}`, (dom) => void (dom.xenstored.hostile = { silentFrom: 0 }));
    const given = "xenstored left 65 requests unanswered; the connection is given up";
    expect(lines[63]).toBe("read k63: xenstore read k63: no reply from xenstored in 10 ms");
    expect(lines[64]).toBe(`read k64: xenstore read k64: no reply from xenstored in 10 ms (${given})`);
    expect(lines.slice(65, 68)).toEqual([
      `read k65: xenstore read k65: ${given}`,
      `read k66: xenstore read k66: ${given}`,
      `read k67: xenstore read k67: ${given}`,
    ]);
    expect(lines[68]).toBe(`timeouts=65 late=0 errors=1 in-flight=0 dead: ${given}`);
    expect(r.domain.xenstored.unanswered).toBe(65); // the last three were never sent
    expect(r.outcome).toBe("poweroff");
  }, 60_000);
});

describe("watch events coalesce per path", () => {
  /** xbtest flood: when the guest writes data/flood-go, xenstored first fires n events at its watch. */
  const flood = (n: number, path?: (i: number) => string) =>
    xbtest("flood", (dom) => {
      dom.xenstored.hooks.beforeRequest = (req, xs) => {
        if (req.type === XS.WRITE && Buffer.from(req.payload).toString("latin1").startsWith("data/flood-go\0"))
          expect(xs.flood("flood", n, path)).toBe(true);
      };
    });
  const grown = (line: string) => Number(/memory grew: (\d+) pages/.exec(line)![1]);

  test("1,000,000 events for the watched path, nobody reading: one stays pending, memory does not grow, the watch still works", () => {
    const { r, lines } = flood(1_000_000);
    expect(lines[0]).toBe("ok 1 the initial event");
    expect(lines[1]).toMatch(/^events: 1000000 pending: 1 coalesced: 999999 overflows: 0 memory grew: \d+ pages$/);
    // Without coalescing, a million queued paths need some 50 MB: more than the 32 MiB domain.
    expect(grown(lines[1])).toBeLessThanOrEqual(4);
    expect(lines.slice(2)).toEqual(["pending: data/flood", "ok 2 the watch fires after the flood", "TEST PASS"]);
    expect(r.outcome).toBe("poweroff");
  }, 60_000);

  test("200,000 events for distinct paths below it: at most 16 pending, collapsed into the watched path", () => {
    const { r, lines } = flood(200_000, (i) => `/local/domain/1/data/flood/${i}`);
    const m = /^events: 200000 pending: (\d+) coalesced: (\d+) overflows: (\d+) memory grew: (\d+) pages$/.exec(lines[1]);
    expect(m).not.toBeNull();
    const [pending, coalesced, overflows] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(pending).toBeLessThanOrEqual(16);
    expect(pending + coalesced).toBe(200_000); // every event is pending or merged into one that is
    expect(overflows).toBeGreaterThan(10_000);
    expect(grown(lines[1])).toBeLessThanOrEqual(4);
    // The watched path stands for the collapsed ones, then the latest paths.
    const left = lines[2].slice("pending: ".length).split(",");
    expect(left[0]).toBe("data/flood");
    expect(left.slice(1)).toEqual(Array.from({ length: pending - 1 }, (_, i) => `data/flood/${200_000 - pending + 1 + i}`));
    expect(lines.slice(3)).toEqual(["ok 2 the watch fires after the flood", "TEST PASS"]);
    expect(r.outcome).toBe("poweroff");
  }, 60_000);

  test("events for paths outside the watched one are dropped and counted, never queued", () => {
    const { lines } = flood(1000, (i) => `/local/domain/1/data/other/${i}`);
    expect(lines[1]).toBe("events: 0 pending: 0 coalesced: 0 overflows: 0 memory grew: 0 pages");
  });
});
