// The xl config reader/writer the test bed uses to rewrite kernel, disk and name.
import { describe, expect, it } from "vitest";
import { diskTarget, parseXl, serializeXl, withDiskTarget, XlConfigError, xlListValue, xlStringValue } from "../../tools/testbed/xlcfg.ts";
import { interpret, verdictOf } from "../../tools/testbed/testbed.ts";

describe("xl config", () => {
  const text = `# an app
name = "hello"   # trailing comment
kernel = '/abs/images/hello.xen'
memory = 64; vcpus = 1
disk = [ 'format=raw, vdev=xvda, access=rw, target=data.img',
         "phy:/dev/loop3,xvdb,w" ]
extra = "a=1 b=#2"
`;
  it("reads strings, numbers and multi-line lists, keeping # inside strings", () => {
    const e = parseXl(text);
    expect(e.map((x) => x.key)).toEqual(["name", "kernel", "memory", "vcpus", "disk", "extra"]);
    expect(xlStringValue(e[1].value)).toBe("/abs/images/hello.xen");
    expect(e[2].value).toBe("64");
    expect(xlListValue(e[4].value)).toEqual(["format=raw, vdev=xvda, access=rw, target=data.img", "phy:/dev/loop3,xvdb,w"]);
    expect(xlStringValue(e[5].value)).toBe("a=1 b=#2");
    expect(parseXl(serializeXl(e))).toEqual(e);
  });
  it("finds and replaces disk targets in keyword and positional syntax", () => {
    expect(diskTarget("format=raw, vdev=xvda, access=rw, target=data.img")).toBe("data.img");
    expect(diskTarget("phy:/dev/loop3,xvdb,w")).toBe("/dev/loop3");
    expect(withDiskTarget("format=raw, vdev=xvda, target=a b.img", "/tmp/disks/d.img")).toBe(
      "format=raw, vdev=xvda, target=/tmp/disks/d.img",
    );
    expect(withDiskTarget("file:/x.img,xvda,w", "/tmp/disks/d.img")).toBe("/tmp/disks/d.img,xvda,w");
  });
  it("names the line of a syntax error", () => {
    expect(() => parseXl('name = "x"\nkernel "y"\n')).toThrow(XlConfigError);
    expect(() => parseXl('name = "x"\nkernel "y"\n')).toThrow(/line 2/);
    expect(() => parseXl('disk = [ "a",\n')).toThrow(/unterminated list/);
  });
});

describe("run-guest report", () => {
  const base = { domain: "g-1", console: "", consoleDroppedBytes: 0, timings: { totalMs: 1 } };
  it("reads a crash, ignoring lines it does not know", () => {
    const r = interpret(
      "xl: Parsing config from x\ncreated 3 100 250\n@@9 end 0 junk\nstopped --c--- 3 400\nxllog: Domain 3 has shut down, reason code 3 0x3\n",
      base,
    );
    expect(r).toMatchObject({ outcome: "crash", exitCode: 2, domid: 3, state: "--c---", shutdownReason: 3 });
    expect(r.timings.createMs).toBe(1500);
    expect(r.xlLog).toEqual(["Domain 3 has shut down, reason code 3 0x3"]);
  });
  it("never reports success for an empty or truncated report", () => {
    expect(interpret("", base).outcome).toBe("testbed-failure");
    expect(interpret("created 3 100 250\n", base).exitCode).toBe(125);
  });
  it("gives XTF-style verdicts from exactly one result line", () => {
    expect(verdictOf("poweroff", "x\nTEST PASS\n")).toBe("pass");
    expect(verdictOf("poweroff", "TEST PASS\nTEST PASS\n")).toBe("error");
    expect(verdictOf("poweroff", "no verdict\n")).toBe("error");
    expect(verdictOf("poweroff", "FAIL: 2 != 3\n")).toBe("fail");
    expect(verdictOf("poweroff", "SKIP\n")).toBe("skip");
    expect(verdictOf("crash", "TEST PASS\n")).toBe("crash");
    expect(verdictOf("timeout", "")).toBe("timeout");
  });
});
