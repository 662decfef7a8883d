// The Xen runtime layer, tested from inside a guest: the xentest app runs one
// case per command line in the harness, with the dom0 side each case needs.
import { describe, expect, test } from "vitest";
import { runWasm, RunResult, RunOptions } from "../../tools/harness/run.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import type { Domain } from "../../tools/harness/domain.ts";
import { GrantError } from "../../tools/harness/grant-table.ts";
import { ConsoleDevice } from "../../tools/harness/console-backend.ts";
import { XenbusState } from "../../tools/harness/xenbus.ts";
import { XS, encodeMsg, strings, XsMsg } from "../../tools/harness/xs-wire.ts";

function run(cmdline: string, opts: Partial<RunOptions> = {}): RunResult {
  return runWasm({ wasm: wasmPath("xentest"), name: "xentest", cmdline, ...opts });
}

/** The case passed: no failed check, one result line, a clean poweroff. */
function expectPass(r: RunResult): void {
  expect(r.console.split("\n").filter((l) => l.startsWith("not ok"))).toEqual([]);
  expect(r.console.trimEnd().split("\n").at(-1)).toBe("TEST PASS");
  expect(r.outcome).toBe("poweroff");
}

describe("shared rings (io/ring.h semantics)", () => {
  test("indices starting at 0xFFFFFFF0 wrap past 2^32 without losing or reordering entries", () => {
    const r = run("ring-wrap");
    expectPass(r);
    expect(r.console).toContain("req_prod wrapped past 2^32");
  });

  test("req_event / rsp_event hold-off: notify exactly when the peer asked", () => expectPass(run("ring-notify")));
});

describe("scheduler", () => {
  test("10,000 sleeping tasks wake in deadline order", () => {
    const r = run("sleepers");
    expectPass(r);
    expect(r.console).toContain("ok 3 they woke in deadline order");
  });

  test("join, choose, timeout, cancel and yield", () => expectPass(run("combinators")));
});

describe("event channels", () => {
  test("loopback notify, latching, mask/unmask without a lost wakeup, close and errors", () => expectPass(run("evtchn")));
});

/**
 * A busy host, made deterministic: the vCPU loses `ns` between any two clock reads (on Xen
 * under QEMU TCG a descheduled vCPU sees the same jumps). A deadline is then always found
 * passed when the loop next looks, before it has blocked: the case where a loop that fires
 * timers before it polls leaves an event pending and never dispatched.
 */
function busyHost(ns: bigint): (dom: Domain) => void {
  return (dom) => {
    const clock = dom.monotonicNs.bind(dom);
    let lost = 0n;
    dom.monotonicNs = () => clock() + (lost += ns);
  };
}

describe("event channels on a busy host (every clock read 2 ms after the last)", () => {
  test("an event sent before a 1 ms sleep that expires unseen is still dispatched (latched), not left pending", () => {
    const r = run("evtchn", { setup: busyHost(2_000_000n) });
    expectPass(r);
    expect(r.console).toContain("ok 5 an event that came before the wait resolves the wait at once");
    expect(r.console).toContain("ok 7 a masked pending port does not wake block()");
    expect(r.console).toContain("ok 8 poll takes no masked port");
    expect(r.console).toContain("ok 15 an event pending when its 1 ms timeout is found expired wins over the timeout");
  });

  for (const c of ["combinators", "sleepers"]) test(`${c} passes too`, () => expectPass(run(c, { setup: busyHost(2_000_000n) })));
});

describe("grant tables", () => {
  // dom0's side: offers two frames, and maps the guest's grant when it publishes the ref.
  function dom0(dom: Domain): void {
    const frame = (s: string) => {
      const f = new Uint8Array(4096);
      f.set(new TextEncoder().encode(s));
      return f;
    };
    expect(dom.gnttab.offer(frame("read-only frame"), true)).toBe(8);
    expect(dom.gnttab.offer(frame(""), false)).toBe(9);
    const xs = dom.xenstored;
    const home = `/local/domain/${dom.domid}/data`;
    let mapping: ReturnType<Domain["gnttab"]["backendMap"]> | undefined;
    xs.watch(`${home}/grant-ref`, () => {
      const ref = Number(xs.read(`${home}/grant-ref`));
      mapping = dom.gnttab.backendMap(ref, true);
      const text = new TextDecoder().decode(mapping.read(0, 10));
      let write = "allowed";
      try {
        mapping.write(0, new Uint8Array([1]));
      } catch (e) {
        if (e instanceof GrantError && /read-only grant/.test(e.message)) write = "refused";
      }
      expect(() => dom.gnttab.backendMap(ref, true)).toThrow(/double map/);
      xs.write(`${home}/grant-result`, `read:${text};write:${write}`);
    });
    xs.watch(`${home}/grant-release`, () => mapping!.unmap());
  }

  test("strict in both directions: unknown refs, double maps, read-only, end access while mapped", () => {
    const r = run("gnttab 8 9", { setup: dom0 });
    expectPass(r);
    // The guest's write through its writable mapping reached dom0's frame.
    expect(new TextDecoder().decode(r.domain.gnttab.frame(9).subarray(0, 16))).toBe("guest wrote this");
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("a guest write through a read-only mapping faults, as on Xen", () => {
    const r = run("gnttab-write-ro 8", { setup: (d) => void d.gnttab.offer(new Uint8Array(4096), true) });
    expect(r.outcome).toBe("crash");
    expect(r.console).toContain("FATAL: page fault: write to a read-only grant mapping (ref 8)");
    expect(r.console).not.toContain("went unnoticed");
  });
});

describe("xenstore client", () => {
  test("read, write, mkdir, directory, rm, permissions and their errors", () => {
    const r = run("xs-basic");
    expectPass(r);
    expect(r.console).toContain("the error names the operation and the path");
  });

  test("a transaction that conflicts with a dom0 write is retried on EAGAIN", () => {
    let raced = false;
    const r = run("xs-tx", {
      setup: (dom) => {
        dom.xenstored.hooks.beforeRequest = (req, xs) => {
          if (req.type === XS.TRANSACTION_END && !raced) {
            raced = true;
            xs.write("/local/domain/1/data/counter", "100");
          }
        };
      },
    });
    expectPass(r);
    expect(raced).toBe(true);
    expect(r.domain.xenstored.read("/local/domain/1/data/counter")).toBe("101");
  });

  test("watches: initial event, tokens, relative and absolute paths, a later dom0 write, unwatch", () => {
    const r = run("xs-watch", {
      setup: (dom) => dom.schedule(dom.monotonicNs() + 50_000_000n, () => dom.xenstored.write("/local/domain/1/data/w/external", "x")),
    });
    expectPass(r);
  });

  test("replies delivered one byte per notification are parsed correctly", () => {
    const r = run("xs-trickle", { setup: (dom) => void (dom.xenstored.trickle = true) });
    expectPass(r);
    // Every reply byte was delivered on its own (about 190 bytes in all).
    const xs = r.domain.xenstored;
    expect(xs.bytesOut).toBeGreaterThan(150);
    expect(xs.deliveries).toBe(xs.bytesOut);
  });

  test("malformed replies are drained and reported, never trusted", () => {
    const msg = (m: Partial<XsMsg> & { payload: Uint8Array }): Uint8Array => encodeMsg({ type: XS.READ, reqId: 0, txId: 0, ...m });
    const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);
    const r = run("xs-malformed", {
      setup: (dom) => {
        dom.xenstored.hooks.reply = (req, _normal) => {
          const path = new TextDecoder().decode(req.payload).split("\0")[0];
          const id = req.reqId;
          if (req.type === XS.TRANSACTION_START) return msg({ type: XS.TRANSACTION_START, reqId: id, payload: strings("abc") });
          switch (path) {
            case "data/big":
              return cat(
                msg({ reqId: id, payload: new Uint8Array(0) }).subarray(0, 12),
                new Uint8Array([0x88, 0x13, 0, 0]),
                new Uint8Array(5000).fill(0x78),
              );
            case "data/unknown-id":
              return cat(
                msg({ reqId: id + 1000, payload: new TextEncoder().encode("bogus") }),
                msg({ reqId: id, payload: new TextEncoder().encode("real") }),
              );
            case "data/badtype":
              return msg({ type: XS.WRITE, reqId: id, payload: strings("OK") });
            case "data/badlist":
              return msg({ type: XS.DIRECTORY, reqId: id, payload: new TextEncoder().encode("a\0b") });
            case "data/badname":
              return msg({ type: XS.ERROR, reqId: id, payload: strings("EWHAT") });
            case "data/badack":
              return msg({ type: XS.WRITE, reqId: id, payload: strings("KO") });
            case "data/notoken":
              return cat(
                msg({ type: XS.WATCH_EVENT, payload: strings("data/x") }),
                msg({ reqId: id, payload: new TextEncoder().encode("v") }),
              );
            case "data/truncated":
              return msg({ reqId: id, payload: new TextEncoder().encode("0123456789") }).subarray(0, 16 + 3);
          }
          return undefined;
        };
      },
    });
    expectPass(r);
  });
});

describe("xenbus frontend", () => {
  test("a device without a backend says which xl config line is missing", () => {
    const r = run("xenbus-missing");
    expectPass(r);
  });

  test("a backend that is closing fails the connect, naming it and its state", () => {
    const r = run("xenbus-closing", {
      setup: (dom) => {
        const dev = new ConsoleDevice(dom, 1);
        dom.xenstored.write(`${dev.backend}/state`, String(XenbusState.Closed));
      },
    });
    expectPass(r);
  });

  test("handshake with a console backend, then 200 lines through a slow console ring, in order", () => {
    let dev!: ConsoleDevice;
    const r = run("pvconsole 200", { setup: (dom) => void (dev = new ConsoleDevice(dom, 1, 10)) });
    expectPass(r);
    const want = Array.from({ length: 200 }, (_, i) => `line ${i} of the second console\n`).join("");
    expect(dev.text()).toBe(want);
    expect(r.console).toContain(`console bytes: ${want.length}\n`);
    expect(dev.fullRings).toBeGreaterThan(0); // the ring filled up: the writer had to wait
    expect(dev.errors).toEqual([]);
    expect(dev.state()).toBe(XenbusState.Closed);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });
});

describe("debug build (assertions kept)", () => {
  for (const c of ["ring-wrap", "combinators", "evtchn", "xs-basic"])
    test(`${c} passes too`, () => expectPass(runWasm({ wasm: wasmPath("xentest", "debug"), name: "xentest", cmdline: c })));
});
