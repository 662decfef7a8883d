// The fuzzer's cases (npm run fuzz, test/fuzz/storage.test.ts): one seeded, hostile run of
// a real app in the harness, classified by what the guest did about it.
//   blkif     the backend mangles response fields (id, operation, status) and makes rsp_prod
//             jump, with delayed and reordered completions; app blkfuzz checks every byte
//   xenstore  xenstored answers with garbage, truncated, oversized, wrong-id or wrong-type
//             replies, none at all, or a burst of watch events; app xsfuzz checks its values
//   disk      bits flipped or garbage written in the superblock, the journal extent, the
//             database extent or the checksum extent of a disk sqlvfs wrote; sqlvfs reads it
// A case is deterministic in its seed: `npm run fuzz -- --replay <target>:<seed>` runs it again.
import { runWasm, RunResult } from "../harness/run.ts";
import { Disk } from "../harness/blkback.ts";
import type { XenbusFaults } from "../harness/xenbus.ts";
import { wasmPath } from "../lib/paths.ts";
import { encodeMsg, XS } from "../harness/xs-wire.ts";
import { pattern } from "../harness/pattern.ts";
import { framesCase, netifCase } from "./net-cases.ts";

/** The storage path's targets (the default of fuzz(); test/fuzz/storage.test.ts). */
export const TARGETS = ["blkif", "xenstore", "disk"] as const;
/** The network path's targets (net-cases.ts; test/fuzz/net.test.ts). */
export const NET_TARGETS = ["netif", "frames"] as const;
export const ALL_TARGETS = [...TARGETS, ...NET_TARGETS] as const;
export type Target = (typeof ALL_TARGETS)[number];
/** leak: the run ended well but left grants, pages, pbufs, pcbs or flows behind (network targets). */
export type Verdict = "ok" | "clear-error" | "trap" | "hang" | "wrong-data" | "leak";
export const VERDICTS: Verdict[] = ["ok", "clear-error", "trap", "hang", "wrong-data", "leak"];

export interface CaseResult {
  target: Target;
  seed: number;
  verdict: Verdict;
  /** What was done to the guest. */
  what: string;
  /** The guest's result line, or how it ended. */
  detail: string;
}

/** mulberry32: small, seeded, reproducible. */
export function rng(seed: number): { next: () => number; int: (n: number) => number; pick: <T>(xs: readonly T[]) => T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)] };
}

/** The seed of case i of a session: spread so neighbouring sessions do not share cases. */
export function caseSeed(session: number, i: number): number {
  let x = (Math.imul(session ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  return x >>> 0;
}

/** The last line of the console that is a result line. */
function resultLine(console: string): string | undefined {
  return console
    .split("\n")
    .filter((l) => /^(TEST PASS|FAIL:|SKIP)/.test(l))
    .pop();
}

/** How a run ended, before any data check: trap, hang (the harness's deadlock detector), or its result line. */
export function classify(r: RunResult, wrongData: RegExp): { verdict: Verdict; detail: string } {
  if (r.trap) return { verdict: "trap", detail: r.detail };
  if (r.outcome === "timeout") return { verdict: "hang", detail: r.detail };
  const line = resultLine(r.console);
  if (line && wrongData.test(line)) return { verdict: "wrong-data", detail: line };
  if (line?.startsWith("TEST PASS")) return { verdict: "ok", detail: line };
  // A failure must say what went wrong: a result line, a panic or a FATAL line.
  const said =
    line ??
    r.console
      .split("\n")
      .filter((l) => /^(panic|FATAL|abort):/.test(l))
      .pop();
  if (said && said.length > 12) return { verdict: "clear-error", detail: said };
  return { verdict: "trap", detail: `ended (${r.detail}) without saying why: ${JSON.stringify(r.console.slice(-300))}` };
}

// ---- blkif ----

export function blkifCase(seed: number): CaseResult {
  const r = rng(seed);
  const sectors = 128 + r.int(1024);
  const pseed = r.int(2 ** 31);
  const muts: string[] = [];
  const plan = new Map<number, { kind: string; v: number }>();
  let dom: any;
  const nMut = 1 + r.int(3);
  for (let k = 0; k < nMut; k++) {
    const at = r.int(60);
    const kind = r.pick(["id", "id-near", "op", "status", "dup", "prod-jump"] as const);
    plan.set(at, { kind, v: r.int(2 ** 31) });
    muts.push(`${kind}@${at}`);
  }
  let prev: bigint | undefined;
  const mangle = (rsp: { id: bigint; op: number; status: number }, n: number) => {
    const id = rsp.id;
    const m = plan.get(n);
    if (m) {
      const { kind, v } = m;
      if (kind === "id") rsp.id = BigInt.asUintN(64, BigInt(v) * 0x100000001n);
      else if (kind === "id-near")
        rsp.id = BigInt(v % 70); // often a slot in use, maybe this very one
      else if (kind === "op") rsp.op = (rsp.op + 1 + (v % 255)) % 256;
      else if (kind === "status") rsp.status = [-1, -2, 1, 2, 7, -32768, 32767][v % 7];
      else if (kind === "dup" && prev !== undefined)
        rsp.id = prev; // a second answer to a settled request
      else if (kind === "prod-jump") {
        // Once this response is on the ring, rsp_prod jumps: backwards, a little, or far ahead.
        const delta = [-3, -1, 1, 2, 5, 31, 32, 33, 1000, 2 ** 31][v % 10];
        dom.schedule(dom.monotonicNs(), () => {
          const ref = Number(dom.xenstored.read(`/local/domain/${dom.domid}/device/vbd/51712/ring-ref`));
          let page: Uint8Array;
          try {
            page = dom.gnttab.guestPage(ref);
          } catch {
            return; // the ring is gone already
          }
          const dv = new DataView(page.buffer, page.byteOffset + 8, 4); // rsp_prod (io/ring.h)
          dv.setUint32(0, (dv.getUint32(0, true) + delta) >>> 0, true);
          dom.vbds[0]?.port?.notify(); // and tells the guest, so it looks now
        });
      }
    }
    prev = id;
  };
  const delayMs = r.pick([0, 0, 1, 3]);
  const reorder = r.next() < 0.5 ? 1 + r.int(1000) : undefined;
  // Answers lost (the request's deadline must fire) or late (after the deadline, or just before it).
  const swallow = r.next() < 0.2 ? [r.int(60)] : undefined;
  const late = r.next() < 0.2 ? [r.int(60)] : undefined;
  const lateMs = r.pick([50, 280, 320, 1000]);
  if (swallow) muts.push(`swallow@${swallow[0]}`);
  if (late) muts.push(`late@${late[0]}+${lateMs}ms`);
  // A hostile value for a key the frontend reads at connect (never a plausible lie: those no frontend can see).
  let keys: Record<string, string> | undefined;
  if (r.next() < 0.2) {
    const k = r.pick(["sectors", "info", "sector-size", "physical-sector-size", "feature-flush-cache", "feature-barrier"]);
    const v = r.pick(["", "-1", "abc", "18446744073709551616", "99999999999999999999", "4096x", "1e3", " 512", "0x200", "3", "513"]);
    if (!(k === "sectors" && /^\d+$/.test(v) && Number(v) <= sectors)) keys = { [k]: v };
    if (keys) muts.push(`${k}="${v}"`);
  }
  // The backend's xenbus side misbehaving: never ready, never connecting, a hostile state, never closing, leaving.
  let xenbus: XenbusFaults | undefined;
  if (r.next() < 0.2) {
    const kind = r.pick(["stayInitialising", "neverConnect", "connectedState", "neverClose", "leaveAt"] as const);
    if (kind === "connectedState") xenbus = { connectedState: r.pick(["99", "4x", "", "0", "7", "-4", " 4", "04"]) };
    else if (kind === "leaveAt") xenbus = { leaveAt: r.int(40), leaveWith: r.pick(["5", "6", "1", "3", "99", "", null]) };
    else xenbus = { [kind]: true };
    muts.push(`xenbus ${JSON.stringify(xenbus)}`);
  }
  const disk = new Disk({
    bytes: pattern(pseed, 0, sectors * 512),
    keys,
    xenbus,
    faults: { mangle, delayMs, reorder, swallow, swallowUnmapped: r.next() < 0.5, late, lateMs },
  });
  const what = `blkfuzz ${pseed} ${sectors} 300; faults ${muts.join(" ")}${delayMs ? ` delay ${delayMs} ms` : ""}${reorder ? ` reorder ${reorder}` : ""}`;
  const run = runWasm({ wasm: wasmPath("blkfuzz"), cmdline: `${pseed} ${sectors} 300`, disks: [disk], setup: (d) => (dom = d) });
  const c = classify(run, /^FAIL: wrong data/);
  // A pass means every write was acknowledged and flushed: the disk must hold it.
  if (c.verdict === "ok" && !Buffer.from(disk.current.subarray(0, sectors * 512)).equals(Buffer.from(pattern(pseed + 1, 0, sectors * 512))))
    return { target: "blkif", seed, verdict: "wrong-data", what, detail: "the guest passed, but the disk does not hold what it wrote" };
  return { target: "blkif", seed, what, ...c };
}

// ---- xenstore ----

export function xenstoreCase(seed: number): CaseResult {
  const r = rng(seed);
  const nMut = 1 + r.int(3);
  const kinds: string[] = [];
  const plan = new Map<number, string>();
  for (let k = 0; k < nMut; k++) {
    const at = r.int(40);
    const kind = r.pick(["garbage", "truncated", "oversized", "wrong-id", "wrong-type", "none", "events", "events-many"] as const);
    plan.set(at, kind);
    kinds.push(`${kind}@${at}`);
  }
  // Replies changed in ways a client can always detect: any value it then accepts is wrong data.
  const detectable = new Set(["oversized", "wrong-id", "wrong-type", "none", "events", "events-many"]);
  let lied = false;
  let n = 0;
  const enc = new TextEncoder();
  const event = (path: string, token: string) =>
    encodeMsg({ type: XS.WATCH_EVENT, reqId: 0, txId: 0, payload: enc.encode(`${path}\0${token}\0`) });
  const randomBytes = (len: number) => Uint8Array.from({ length: len }, () => r.int(256));
  const concat = (parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  const hooks = {
    reply(req: { type: number; reqId: number }, bytes: Uint8Array): Uint8Array | undefined {
      const kind = plan.get(n++);
      if (!kind) return undefined;
      if (!detectable.has(kind)) lied = true;
      const dv = new DataView(bytes.buffer.slice(0));
      const copy = new Uint8Array(dv.buffer);
      switch (kind) {
        case "garbage":
          return randomBytes(r.int(5000));
        case "truncated":
          return bytes.subarray(0, r.int(bytes.length));
        case "oversized": {
          const len = 4097 + r.int(100000);
          dv.setUint32(12, len, true);
          return concat([copy.subarray(0, 16), randomBytes(Math.min(len, 2000 + r.int(6000)))]);
        }
        case "wrong-id":
          dv.setUint32(4, (req.reqId + 1000 + r.int(2 ** 30)) >>> 0, true);
          return copy;
        case "wrong-type":
          dv.setUint32(
            0,
            r.pick([XS.ERROR, XS.WATCH_EVENT, XS.DIRECTORY, XS.READ, XS.WRITE, 99, 2 ** 31].filter((t) => t !== req.type)),
            true,
          );
          return copy;
        case "none":
          return new Uint8Array(0);
        case "events":
          return concat([event(`/local/domain/1/data/k${r.int(8)}`, "fuzz"), event("/nowhere", `t${r.int(100)}`), bytes]);
        case "events-many": {
          const evs = Array.from({ length: 200 + r.int(2000) }, (_, i) => event(`/local/domain/1/data/x${i % 50}`, `tok${r.int(10)}`));
          return concat([...evs, bytes]);
        }
      }
      return undefined;
    },
  };
  const what = `xsfuzz ${seed} 300; replies ${kinds.join(" ")}`;
  const run = runWasm({ wasm: wasmPath("xsfuzz"), cmdline: `${seed} 300`, setup: (d) => (d.xenstored.hooks = hooks as any) });
  // A value read back different from the one written is wrong data only when the reply was
  // changed detectably; a stream rewritten into another well-formed reply is a lie no client can see.
  const c = classify(run, lied ? /^$/ : /^FAIL: wrong data/);
  return { target: "xenstore", seed, what, ...c };
}

// ---- disk images ----

const DISK_ROWS = 60;
const DISK_ROW_SIZE = 300;
interface Base {
  bytes: Uint8Array;
  expect: string;
  /** A transaction was cut short by a power cut: the journal is hot and must roll it back. */
  hot: boolean;
}
const bases = new Map<boolean, Base[]>();

const sqlvfs = (cmdline: string, disk: Disk) => runWasm({ wasm: wasmPath("sqlvfs"), cmdline, disks: [disk] });
const rowsLine = (console: string) => /^sqlvfs: \d+ rows, checksum \d+$/m.exec(console)?.[0];

/**
 * The disks the cases damage: one sqlvfs wrote (a transaction of 60 rows), and the same
 * with a second transaction of 40 rows cut by a power loss midway, its journal hot. Both
 * must read as the 60 rows.
 */
function baseDisks(plain: boolean): Base[] {
  const have = bases.get(plain);
  if (have) return have;
  const disk = new Disk({ sectors: 4096 });
  const w = sqlvfs(`${plain ? "plain " : ""}write ${DISK_ROWS} ${DISK_ROW_SIZE}`, disk);
  if (!/^TEST PASS/m.test(w.console)) throw new Error(`fuzz: sqlvfs could not write the base disk:\n${w.console}`);
  const clean = disk.durable.slice();
  const rd = sqlvfs("read", new Disk({ bytes: clean.slice() }));
  const expect = rowsLine(rd.console);
  if (!expect || !/^TEST PASS/m.test(rd.console)) throw new Error(`fuzz: sqlvfs cannot read the base disk:\n${rd.console}`);
  // How many writes, flushes and barriers the second transaction makes; cut it two thirds in.
  const probe = new Disk({ bytes: clean.slice() });
  const p = sqlvfs(`write 40 ${DISK_ROW_SIZE}`, probe);
  const writes = p.domain.vbds[0].log.filter((e) => e.op !== "read").length;
  if (!/^TEST PASS/m.test(p.console) || writes < 6) throw new Error(`fuzz: sqlvfs's second transaction (${writes} writes):\n${p.console}`);
  const cut = new Disk({ bytes: clean.slice(), faults: { powerCutAfter: Math.floor((writes * 2) / 3) } });
  sqlvfs(`write 40 ${DISK_ROW_SIZE}`, cut);
  const hot = cut.durable.slice();
  const again = sqlvfs("read", new Disk({ bytes: hot.slice() }));
  if (rowsLine(again.console) !== expect) throw new Error(`fuzz: the power-cut disk does not read as the first 60 rows:\n${again.console}`);
  const made = [
    { bytes: clean, expect, hot: false },
    { bytes: hot, expect, hot: true },
  ];
  bases.set(plain, made);
  return made;
}

/** The extents the superblock names (layout.ts), in 4 KiB blocks. */
function extents(img: Uint8Array): Record<string, [number, number]> {
  const dv = new DataView(img.buffer, img.byteOffset, 4096);
  const u = (o: number) => Number(dv.getBigUint64(o, true));
  const out: Record<string, [number, number]> = {
    superblock: [0, 2],
    journal: [u(40), u(48)],
    database: [u(56), Math.ceil(u(72) / 4096) || u(64)],
  };
  if (u(160) > 0) out.checksums = [u(152), u(160)];
  return out;
}

/** plain: a disk formatted without block checksums (layout version 1), to show what the checksums catch. */
export function diskCase(seed: number, plain = false): CaseResult {
  const r = rng(seed);
  const b = r.pick(baseDisks(plain));
  const img = b.bytes.slice();
  const ext = extents(b.bytes);
  const names = Object.keys(ext);
  const muts: string[] = [];
  const nMut = 1 + r.int(3);
  for (let k = 0; k < nMut; k++) {
    const name = r.pick(names);
    const [start, count] = ext[name];
    const block = start + r.int(Math.max(1, count));
    const off = block * 4096 + r.int(4096);
    if (off >= img.length) continue;
    if (r.next() < 0.6) {
      const bits = 1 + r.int(8);
      for (let i = 0; i < bits; i++) {
        const o = Math.min(img.length - 1, off + r.int(64));
        img[o] ^= 1 << r.int(8);
      }
      muts.push(`${bits} bit flips in ${name} block ${block} near byte ${off % 4096}`);
    } else {
      const len = 1 + r.int(512);
      for (let i = 0; i < len && off + i < img.length; i++) img[off + i] = r.int(256);
      muts.push(`${len} garbage bytes in ${name} block ${block} at byte ${off % 4096}`);
    }
  }
  const what = `sqlvfs read${b.hot ? " (hot journal)" : ""}; ${muts.join(", ")}`;
  const run = sqlvfs("read", new Disk({ bytes: img }));
  // sqlvfs checks each value it reads against the one it wrote: a mismatch is data the VFS returned.
  const c = classify(run, /^FAIL: (wrong data|row \d+ holds the wrong value)/);
  // sqlvfs passes when SQLite read every row: then they must be the rows written.
  if (c.verdict === "ok") {
    const got = rowsLine(run.console);
    if (got !== b.expect)
      return { target: "disk", seed, verdict: "wrong-data", what, detail: `read "${got}", but the disk holds "${b.expect}"` };
  }
  return { target: "disk", seed, what, ...c };
}

export function runCase(target: Target, seed: number): CaseResult {
  if (target === "blkif") return blkifCase(seed);
  if (target === "xenstore") return xenstoreCase(seed);
  if (target === "netif") return netifCase(seed);
  if (target === "frames") return framesCase(seed);
  return diskCase(seed);
}
