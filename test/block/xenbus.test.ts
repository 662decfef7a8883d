// The vbd's xenbus side against a backend that misbehaves: every wait of the
// handshake and the close has a deadline, the backend's state is parsed
// exactly, and a backend that leaves Connected fails the device and every
// request in flight. Each run must end (outcome poweroff, never a hang) with
// the exact error. The xbtest app sets short deadlines so the runs stay quick.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { DiskOptions } from "../../tools/harness/blkback.ts";
import { XenbusFaults } from "../../tools/harness/xenbus.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

const BE = "/local/domain/0/backend/vbd/1/51712";
const FE = "/local/domain/1/device/vbd/51712";

/** xbtest open with a 300 ms connect, 200 ms close and 200 ms unmap deadline. */
const open = (xenbus: XenbusFaults, disk: DiskOptions = {}, deadlines = "300 200 200") => {
  const r = runWasm({ wasm: wasmPath("xbtest"), cmdline: `open ${deadlines}`, disks: [{ ...disk, xenbus }] });
  return { r, lines: r.console.trimEnd().split("\n"), vbd: r.domain.vbds[0], xs: r.domain.xenstored };
};

describe("connect deadlines: a backend that never gets there", () => {
  test("it never leaves Initialising: open fails after the deadline, naming the state waited for and what to check", () => {
    const { r, lines, xs } = open({ stayInitialising: true });
    expect(lines).toEqual([
      `open: device/vbd/51712: the backend ${BE} did not reach InitWait in 300 ms, it is Initialising (state 1): check that the backend domain runs xen-blkback, and read its kernel log`,
      "ok 1 ran",
      "TEST PASS",
    ]);
    expect(r.outcome).toBe("poweroff");
    expect(xs.read(`${FE}/state`)).toBe("6"); // our Closed tells a slow backend to give up
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("it never reaches Connected: open fails after the deadline", () => {
    const { r, lines } = open({ neverConnect: true });
    expect(lines[0]).toBe(
      `open: device/vbd/51712: the backend ${BE} did not reach Connected in 300 ms, it is InitWait (state 2): it may have refused our ring; read the backend domain's kernel log`,
    );
    expect(r.outcome).toBe("poweroff");
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });

  test("the default deadline (30 s) outlasts a slow backend: InitWait after 1 s, and the handshake goes on", () => {
    const r = runWasm({
      wasm: wasmPath("xbtest"),
      cmdline: "open 0 200 200",
      disks: [{ xenbus: { stayInitialising: true } }],
      setup: (dom) => dom.schedule(dom.monotonicNs() + 1_000_000_000n, () => dom.xenstored.write(`${BE}/state`, "2")),
    });
    expect(r.console.split("\n")[0]).toBe("open: ok");
  });
});

describe("the backend's state is parsed exactly", () => {
  test.each([["99"], ["4x"], [""], ["0"], ["04"], [" 4"]])(
    "state %j where Connected belongs: the device is refused, naming the key and the value",
    (v) => {
      const { r, lines, xs } = open({ connectedState: v });
      expect(lines[0]).toBe(
        `open: device/vbd/51712: backend key ${BE}/state = "${v}" is not a XenbusState (1 to 6); the device is refused`,
      );
      expect(r.outcome).toBe("poweroff");
      expect(xs.read(`${FE}/state`)).toBe("6");
    },
  );
});

describe("close deadlines", () => {
  test("the backend never writes Closing: close fails after its deadline, naming the state", () => {
    const { r, lines, xs } = open({ neverClose: true });
    expect(lines.slice(0, 2)).toEqual([
      "open: ok",
      `close: device/vbd/51712: the backend ${BE} did not close in 200 ms, it is Connected (state 4): it may still map the ring; check the backend domain`,
    ]);
    expect(r.outcome).toBe("poweroff");
    expect(xs.read(`${FE}/state`)).toBe("6"); // Closed all the same
    // The backend still maps the ring: its grant cannot end, and the page is never reused.
    expect(r.domain.gnttab.live()).toEqual({ grants: 1, mappings: 0 });
  });

  test("refusal path: hostile sectors, and the backend never closes: the refusal is still printed, after the close deadline", () => {
    const { r, lines, vbd } = open({ neverClose: true }, { keys: { sectors: "12ab" } });
    expect(lines).toEqual([
      `open: vbd 51712: backend key sectors = "12ab" is not a number (closing the device: device/vbd/51712: the backend ${BE} did not close in 200 ms, it is Connected (state 4): it may still map the ring; check the backend domain)`,
      "ok 1 ran",
      "TEST PASS",
    ]);
    expect(r.outcome).toBe("poweroff");
    expect(vbd.state()).toBe(4); // the backend never moved
  });

  test("refusal path with a backend that closes: the plain refusal", () => {
    const { lines, vbd, r } = open({}, { keys: { sectors: "12ab" } });
    expect(lines[0]).toBe('open: vbd 51712: backend key sectors = "12ab" is not a number');
    expect(vbd.state()).toBe(6);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });
});

describe("a backend that leaves Connected fails the device and every request in flight", () => {
  // blktest read: a read of sector 0+8, then a second one; the backend leaves instead of answering request n.
  const leave = (xenbus: XenbusFaults) => {
    const r = runWasm({ wasm: wasmPath("blktest"), cmdline: "read 0 8", disks: [{ xenbus }] });
    return { r, lines: r.console.trimEnd().split("\n") };
  };

  test.each([
    ["Closing", { leaveAt: 0 }, "it is Closing (state 5)"],
    ["Closed", { leaveAt: 0, leaveWith: "6" }, "it is Closed (state 6)"],
    ["InitWait", { leaveAt: 0, leaveWith: "2" }, "it is InitWait (state 2)"],
    ["its state node removed", { leaveAt: 0, leaveWith: null }, "its state node is gone"],
  ] as [string, XenbusFaults, string][])(
    "%s while a read is in flight: the read fails with the reason, and so does the next",
    (_, xenbus, why) => {
      const { r, lines } = leave(xenbus);
      const err = `vbd 51712: the backend ${BE} left Connected: ${why}`;
      expect(lines.slice(0, 2)).toEqual([`read 1: ${err}`, `read 2: ${err}`]);
      expect(r.outcome).toBe("poweroff");
    },
  );

  test("a state that is no XenbusState after Connected: the next request fails, naming the key and value", () => {
    const { r, lines } = leave({ leaveAt: 1, leaveWith: "4x" });
    expect(lines.slice(0, 2)).toEqual([
      "read 1: ok",
      `read 2: vbd 51712: backend key ${BE}/state = "4x" is not a XenbusState (1 to 6); the device is refused`,
    ]);
    expect(r.outcome).toBe("poweroff");
  });
});

describe("a backend that leaves Connected during open", () => {
  test("it writes Closing as we write Connected: open fails with the reason, and the device is closed again", () => {
    const r = runWasm({
      wasm: wasmPath("xbtest"),
      cmdline: "open 300 200 200",
      disks: [{}],
      setup: (dom) =>
        void (dom.xenstored.hooks.beforeRequest = (req, xs) => {
          if (Buffer.from(req.payload).toString("latin1") === "device/vbd/51712/state\x004") xs.write(`${BE}/state`, "5");
        }),
    });
    expect(r.console.split("\n")[0]).toBe(`open: device/vbd/51712: the backend ${BE} left Connected: it is Closing (state 5)`);
    expect(r.outcome).toBe("poweroff");
    expect(r.domain.vbds[0].state()).toBe(6);
    expect(r.domain.gnttab.live()).toEqual({ grants: 0, mappings: 0 });
  });
});

describe("xenstored never answers during open", () => {
  // xbtest open with a 200 ms xenstore deadline; xenstored stops answering at request n.
  const stuck = (n: number) => {
    const r = runWasm({
      wasm: wasmPath("xbtest"),
      cmdline: "open 0 0 0 200",
      disks: [{}],
      setup: (dom) => void (dom.xenstored.hostile = { silentFrom: n }),
    });
    return { r, first: r.console.split("\n")[0] };
  };

  test.each([
    [0, "open: block: listing the virtual disks: xenstore directory device/vbd: no reply from xenstored in 200 ms"],
    [1, "open: device/vbd/51712/backend-id: xenstore read device/vbd/51712/backend-id: no reply from xenstored in 200 ms"],
    [2, "open: device/vbd/51712: xenstore read device/vbd/51712/backend: no reply from xenstored in 200 ms"],
  ])("from request %i on: open fails naming the request", (n, want) => {
    const { r, first } = stuck(n);
    expect(first).toBe(want);
    expect(r.outcome).toBe("poweroff");
  });

  test("at any later request of the handshake: open fails with a xenstore deadline error, never hangs", () => {
    for (let n = 3; n < 16; n++) {
      const { r, first } = stuck(n);
      expect(r.outcome).toBe("poweroff");
      expect(first).toMatch(/^open: (vbd 51712|device\/vbd\/51712): .*xenstore .*: no reply from xenstored in 200 ms/);
    }
  }, 120_000);
});
