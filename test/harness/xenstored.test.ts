// The harness's xenstored on its own: requests written into a ring in a plain
// buffer, replies checked byte for byte against io/xs_wire.h, and the errors the
// real daemon gives for malformed or forbidden requests.
import { describe, expect, test } from "vitest";
import { Xenstored } from "../../tools/harness/xenstored.ts";
import { GuestFault } from "../../tools/harness/errno.ts";
import { XS, RING, encodeMsg, strings } from "../../tools/harness/xs-wire.ts";

const RING_AT = 4096;

/** A xenstored for domain 1 over a ring at RING_AT, and a raw client for it. */
function setup() {
  const mem = new ArrayBuffer(3 * 4096);
  const xs = new Xenstored(1, "guest", "00000000-0000-4000-8000-000000000001", () => mem, { store: 1, console: 2 });
  xs.attach(RING_AT);
  const dv = new DataView(mem);
  const u32 = (off: number) => dv.getUint32(RING_AT + off, true);
  let reqId = 0;
  const send = (bytes: Uint8Array) => {
    let prod = u32(RING.REQ_PROD);
    for (const b of bytes) dv.setUint8(RING_AT + RING.REQ + (prod++ & 1023), b);
    dv.setUint32(RING_AT + RING.REQ_PROD, prod >>> 0, true);
    xs.pump();
  };
  const take = (): Uint8Array => {
    const cons = u32(RING.RSP_CONS);
    const prod = u32(RING.RSP_PROD);
    const out = new Uint8Array((prod - cons) >>> 0);
    for (let i = 0; i < out.length; i++) out[i] = dv.getUint8(RING_AT + RING.RSP + ((cons + i) & 1023));
    dv.setUint32(RING_AT + RING.RSP_CONS, prod, true);
    xs.pump();
    return out;
  };
  /** Sends one request and parses every message that comes back. */
  const req = (type: number, payload: Uint8Array, txId = 0) => {
    send(encodeMsg({ type, reqId: ++reqId, txId, payload }));
    return parse(take());
  };
  return { xs, mem, dv, send, take, req, u32 };
}

function parse(bytes: Uint8Array): { type: number; reqId: number; txId: number; text: string }[] {
  const out: { type: number; reqId: number; txId: number; text: string }[] = [];
  let p = 0;
  while (p + 16 <= bytes.length) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + p);
    const len = dv.getUint32(12, true);
    out.push({
      type: dv.getUint32(0, true),
      reqId: dv.getUint32(4, true),
      txId: dv.getUint32(8, true),
      text: Buffer.from(bytes.subarray(p + 16, p + 16 + len)).toString("latin1"),
    });
    p += 16 + len;
  }
  return out;
}

describe("wire format (io/xs_wire.h)", () => {
  test("XS_READ of domid: the reply bytes, built by hand from the header layout", () => {
    const { send, take } = setup();
    // type 2 (XS_READ), req_id 7, tx_id 0, len 6, "domid\0"
    send(new Uint8Array([2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, ...Buffer.from("domid\0")]));
    // type 2, req_id 7, tx_id 0, len 1, "1": a read's value has no NUL
    expect([...take()]).toEqual([2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x31]);
  });

  test("a request split across many notifications is assembled", () => {
    const { send, take } = setup();
    const m = encodeMsg({ type: XS.READ, reqId: 3, txId: 0, payload: strings("name") });
    for (const b of m) send(new Uint8Array([b]));
    expect(parse(take())).toEqual([{ type: XS.READ, reqId: 3, txId: 0, text: "guest" }]);
  });

  test("errors come back as XS_ERROR with the errno's name and a NUL", () => {
    const { req } = setup();
    expect(req(XS.READ, strings("nope"))).toEqual([{ type: XS.ERROR, reqId: 1, txId: 0, text: "ENOENT\0" }]);
  });

  test("a payload over XENSTORE_PAYLOAD_MAX is E2BIG, and the stream stays in step", () => {
    const { send, take } = setup();
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setUint32(0, XS.WRITE, true);
    new DataView(hdr.buffer).setUint32(4, 9, true);
    new DataView(hdr.buffer).setUint32(12, 5000, true);
    send(hdr);
    for (let i = 0; i < 5; i++) send(new Uint8Array(1000).fill(0x61)); // the 5000 bytes, as the ring allows
    send(encodeMsg({ type: XS.READ, reqId: 10, txId: 0, payload: strings("domid") }));
    expect(parse(take())).toEqual([
      { type: XS.ERROR, reqId: 9, txId: 0, text: "E2BIG\0" },
      { type: XS.READ, reqId: 10, txId: 0, text: "1" },
    ]);
  });

  test("malformed requests are EINVAL: unknown type, missing NUL, bad paths, wrong argument count", () => {
    const { req } = setup();
    const err = (r: { text: string }[]) => r[0].text;
    expect(err(req(99, strings("x")))).toBe("EINVAL\0");
    expect(err(req(XS.READ, Buffer.from("domid")))).toBe("EINVAL\0");
    expect(err(req(XS.READ, strings("a//b")))).toBe("EINVAL\0");
    expect(err(req(XS.READ, strings("data/")))).toBe("EINVAL\0");
    expect(err(req(XS.READ, strings("bad path")))).toBe("EINVAL\0");
    expect(err(req(XS.WATCH, strings("data")))).toBe("EINVAL\0");
    expect(err(req(XS.TRANSACTION_END, strings("X"), 0))).toBe("EINVAL\0");
    expect(err(req(XS.WATCH_EVENT, strings("a", "b")))).toBe("EINVAL\0");
  });

  test("privileged operations are EACCES for a domU", () => {
    const { req } = setup();
    expect(req(XS.INTRODUCE, strings("2", "100", "3"))[0].text).toBe("EACCES\0");
    expect(req(XS.SET_TARGET, strings("2", "3"))[0].text).toBe("EACCES\0");
  });

  test("corrupt ring indices close the connection and are reported as a guest fault", () => {
    const { xs, dv, u32 } = setup();
    dv.setUint32(RING_AT + RING.REQ_PROD, u32(RING.REQ_CONS) + 5000, true);
    expect(() => xs.pump()).toThrow(GuestFault);
    expect(u32(RING.ERROR)).toBe(2); // XENSTORE_ERROR_RINGIDX
  });
});

describe("permissions", () => {
  test("a domU cannot read other domains' trees, nor write keys dom0 owns", () => {
    const { req } = setup();
    expect(req(XS.READ, strings("/local/domain/0/name"))[0].text).toBe("EACCES\0");
    expect(req(XS.DIRECTORY, strings("/vm"))[0].text).toBe("EACCES\0");
    expect(req(XS.WRITE, Buffer.from("name\0evil"))[0].text).toBe("EACCES\0");
    expect(req(XS.WRITE, Buffer.from("/local/domain/0/x\0evil"))[0].text).toBe("EACCES\0");
    // A missing node under an unreadable one is EACCES too, not ENOENT (no probing).
    expect(req(XS.READ, strings("/local/domain/0/nothing"))[0].text).toBe("EACCES\0");
  });

  test("nodes a domU creates are its own; it may share them but not give them away", () => {
    const { req } = setup();
    expect(req(XS.WRITE, Buffer.from("data/k\0v"))[0].text).toBe("OK\0");
    expect(req(XS.GET_PERMS, strings("data/k"))[0].text).toBe("n1\0");
    expect(req(XS.SET_PERMS, strings("data/k", "n1", "r0"))[0].text).toBe("OK\0");
    expect(req(XS.GET_PERMS, strings("data/k"))[0].text).toBe("n1\0r0\0");
    expect(req(XS.SET_PERMS, strings("data/k", "n0"))[0].text).toBe("EACCES\0");
    expect(req(XS.SET_PERMS, strings("data/k", "x1"))[0].text).toBe("EINVAL\0");
  });
});

describe("transactions", () => {
  test("a conflicting dom0 write makes the commit EAGAIN and discards the transaction", () => {
    const { xs, req } = setup();
    req(XS.WRITE, Buffer.from("data/c\x001"));
    const [start] = req(XS.TRANSACTION_START, strings(""));
    const tx = Number(start.text.slice(0, -1));
    expect(start.text).toMatch(/^\d+\0$/);
    expect(req(XS.READ, strings("data/c"), tx)[0].text).toBe("1");
    expect(req(XS.WRITE, Buffer.from("data/c\x002"), tx)[0].text).toBe("OK\0");
    expect(xs.read("/local/domain/1/data/c")).toBe("1"); // not visible outside the transaction
    xs.write("/local/domain/1/data/c", "100");
    expect(req(XS.TRANSACTION_END, strings("T"), tx)[0].text).toBe("EAGAIN\0");
    expect(xs.read("/local/domain/1/data/c")).toBe("100");
    expect(req(XS.READ, strings("data/c"), tx)[0].text).toBe("ENOENT\0"); // the transaction is gone
  });

  test("without a conflict the commit applies every change; abort applies none", () => {
    const { xs, req } = setup();
    const start = () => Number(req(XS.TRANSACTION_START, strings(""))[0].text.slice(0, -1));
    const t1 = start();
    req(XS.WRITE, Buffer.from("data/a\0x"), t1);
    req(XS.MKDIR, strings("data/d"), t1);
    expect(req(XS.TRANSACTION_END, strings("T"), t1)[0].text).toBe("OK\0");
    expect(xs.read("/local/domain/1/data/a")).toBe("x");
    expect(xs.read("/local/domain/1/data/d")).toBe("");
    const t2 = start();
    req(XS.WRITE, Buffer.from("data/a\0y"), t2);
    expect(req(XS.TRANSACTION_END, strings("F"), t2)[0].text).toBe("OK\0");
    expect(xs.read("/local/domain/1/data/a")).toBe("x");
    expect(req(XS.TRANSACTION_START, strings(""), t2 + 100)[0].text).toBe("ENOENT\0");
  });
});

describe("watches", () => {
  test("registration is acknowledged, then fires once at once with the token", () => {
    const { req } = setup();
    expect(req(XS.WATCH, strings("data", "tok"))).toEqual([
      { type: XS.WATCH, reqId: 1, txId: 0, text: "OK\0" },
      { type: XS.WATCH_EVENT, reqId: 0, txId: 0, text: "data\0tok\0" },
    ]);
    expect(req(XS.WATCH, strings("data", "tok"))[0].text).toBe("EEXIST\0");
  });

  test("changes below the path fire it; the event comes before the change's ack, as in cxenstored", () => {
    const { req } = setup();
    req(XS.WATCH, strings("/local/domain/1/data", "abs"));
    expect(req(XS.WRITE, Buffer.from("data/x/y\0v"))).toEqual([
      { type: XS.WATCH_EVENT, reqId: 0, txId: 0, text: "/local/domain/1/data/x/y\0abs\0" },
      { type: XS.WRITE, reqId: 2, txId: 0, text: "OK\0" },
    ]);
    expect(req(XS.UNWATCH, strings("/local/domain/1/data", "abs"))[0].text).toBe("OK\0");
    expect(req(XS.WRITE, Buffer.from("data/x/y\0w"))).toHaveLength(1);
  });

  test("a watch on a node fires when an ancestor is removed; none fires for nodes the domU cannot read", () => {
    const { xs, req } = setup();
    req(XS.WRITE, Buffer.from("data/p/q\0v"));
    req(XS.WATCH, strings("data/p/q", "child"));
    expect(req(XS.RM, strings("data/p")).map((m) => m.text)).toEqual(["data/p/q\0child\0", "OK\0"]);
    req(XS.WATCH, strings("/local/domain/0", "spy"));
    xs.write("/local/domain/0/secret", "s");
    expect(req(XS.READ, strings("domid")).map((m) => m.text)).toEqual(["1"]);
  });
});

describe("hostile modes (tests of the guest's deadlines and bounds)", () => {
  test("silentFrom: requests from the n-th on are taken off the ring and never answered", () => {
    const { xs, req, u32 } = setup();
    xs.hostile = { silentFrom: 1 };
    expect(req(XS.READ, strings("domid"))).toEqual([{ type: XS.READ, reqId: 1, txId: 0, text: "1" }]);
    expect(req(XS.READ, strings("name"))).toEqual([]);
    expect(req(XS.WRITE, Buffer.from("data/x\0v"))).toEqual([]);
    expect(u32(RING.REQ_CONS)).toBe(u32(RING.REQ_PROD)); // consumed all the same
    expect(xs.unanswered).toBe(2);
    expect(xs.read("/local/domain/1/data/x")).toBeUndefined(); // nor carried out
  });

  test("hold: a reply goes out only before the next request's, so it arrives after its deadline", () => {
    const { xs, req } = setup();
    xs.hostile = { hold: [0] };
    expect(req(XS.READ, strings("name"))).toEqual([]);
    expect(req(XS.READ, strings("domid"))).toEqual([
      { type: XS.READ, reqId: 1, txId: 0, text: "guest" },
      { type: XS.READ, reqId: 2, txId: 0, text: "1" },
    ]);
  });

  test("hold, then releaseHeld(): the late reply goes out without another request", () => {
    const { xs, req, take } = setup();
    xs.hostile = { hold: [0] };
    expect(req(XS.READ, strings("domid"))).toEqual([]);
    xs.releaseHeld();
    expect(parse(take())).toEqual([{ type: XS.READ, reqId: 1, txId: 0, text: "1" }]);
  });

  test("flood: n events for a watch, made as the ring takes them, in order after what was queued", () => {
    const { xs, req, take } = setup();
    req(XS.WATCH, strings("data", "tok"));
    expect(xs.flood("nobody", 5)).toBe(false);
    expect(xs.flood("tok", 100_000, (i) => `/local/domain/1/data/${i % 3}`)).toBe(true);
    let events = 0;
    const seen = new Set<string>();
    let buf = Buffer.alloc(0);
    for (let rounds = 0; rounds < 1_000_000 && events < 100_000; rounds++) {
      // The ring holds whole messages and pieces of them: parse what is complete.
      buf = Buffer.concat([buf, take()]);
      let p = 0;
      while (p + 16 <= buf.length && p + 16 + buf.readUInt32LE(p + 12) <= buf.length) {
        const [m] = parse(buf.subarray(p, p + 16 + buf.readUInt32LE(p + 12)));
        expect(m.type).toBe(XS.WATCH_EVENT);
        seen.add(m.text);
        events++;
        p += 16 + buf.readUInt32LE(p + 12);
      }
      buf = buf.subarray(p);
    }
    expect(events).toBe(100_000);
    expect([...seen].sort()).toEqual(["data/0\0tok\0", "data/1\0tok\0", "data/2\0tok\0"]); // relative, as the watch
    expect(xs.hasOutput()).toBe(false);
    expect(req(XS.READ, strings("domid"))).toEqual([{ type: XS.READ, reqId: 2, txId: 0, text: "1" }]);
  });
});
