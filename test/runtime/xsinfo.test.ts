// xsinfo: the app that reads who it is from xenstore, watches a key, and prints
// it; and the bytes its xenstore client puts on the wire, checked against the spec.
import { describe, expect, test } from "vitest";
import { runWasm } from "../../tools/harness/run.ts";
import { wasmPath } from "../../tools/lib/paths.ts";

describe("xsinfo", () => {
  test("prints its domid, name and vm path from xenstore, and a watch event", () => {
    const r = runWasm({ wasm: wasmPath("xsinfo"), name: "web-7", domid: 7, uuid: "0b5e55ed-0000-4000-8000-00000000cafe" });
    expect(r.console).toBe(
      [
        "domid: 7",
        "name: web-7",
        "vm: /vm/0b5e55ed-0000-4000-8000-00000000cafe",
        "watch xsinfo: data/xsinfo = web-7 was here",
        "TEST PASS",
        "",
      ].join("\n"),
    );
    expect(r.outcome).toBe("poweroff");
    expect(r.domain.xenstored.read("/local/domain/7/data/xsinfo")).toBe("web-7 was here");
  });

  test("hold: waits for dom0's data/done before its result, so dom0 can read its keys while it exists", () => {
    let watched = false;
    const r = runWasm({
      wasm: wasmPath("xsinfo"),
      cmdline: "hold",
      setup: (dom) =>
        void (dom.xenstored.hooks.beforeRequest = (req, xs) => {
          // dom0 answers once the guest watches data/done (4 = XS_WATCH)
          if (req.type === 4 && Buffer.from(req.payload).toString("latin1").startsWith("data/done\0")) {
            watched = true;
            xs.write("/local/domain/1/data/done", "1");
          }
        }),
    });
    expect(watched).toBe(true);
    expect(r.console.trimEnd().split("\n").slice(-2)).toEqual(["dom0 is done reading", "TEST PASS"]);
  });

  test("hold without dom0's answer: one FAIL line after its wait, never a pass", () => {
    const r = runWasm({ wasm: wasmPath("xsinfo"), cmdline: "hold" });
    expect(r.console.trimEnd().split("\n").at(-1)).toBe("FAIL: dom0 never wrote data/done");
    expect(r.console).not.toContain("TEST PASS");
  }, 90_000);

  test('its first request is XS_READ "domid", byte for byte as io/xs_wire.h lays it out', () => {
    const seen: Uint8Array[] = [];
    runWasm({ wasm: wasmPath("xsinfo"), setup: (dom) => void (dom.xenstored.hooks.rawRequest = (b) => seen.push(b)) });
    // struct xsd_sockmsg, little-endian u32s: type XS_READ = 2, req_id 1, tx_id 0, len 6; then "domid\0".
    const header = [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0];
    const payload = [0x64, 0x6f, 0x6d, 0x69, 0x64, 0x00];
    expect([...seen[0]]).toEqual([...header, ...payload]);
    // XS_WRITE = 11: "data/xsinfo\0" then the value with no NUL.
    const write = seen.find((b) => b[0] === 11)!;
    const len = new DataView(write.buffer, write.byteOffset).getUint32(12, true);
    expect(len).toBe("data/xsinfo\0guest was here".length);
    expect(Buffer.from(write.subarray(16)).toString("latin1")).toBe("data/xsinfo\0guest was here");
    // XS_WATCH = 4: path and token, each NUL-terminated.
    const watch = seen.find((b) => b[0] === 4)!;
    expect(Buffer.from(watch.subarray(16)).toString("latin1")).toBe("data/xsinfo\0xsinfo\0");
    // Request ids are distinct.
    const ids = seen.map((b) => new DataView(b.buffer, b.byteOffset).getUint32(4, true));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("xsinfo when xenstore misbehaves", () => {
  test("a key it cannot read gives one FAIL line naming the key and the error", () => {
    const r = runWasm({ wasm: wasmPath("xsinfo"), setup: (dom) => dom.xenstored.rm("/local/domain/1/name") });
    expect(r.console).toBe("FAIL: xenstore read name: ENOENT\n");
  });
});
