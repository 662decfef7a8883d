// blktest: in-guest tests of the block stack (runtime/block) against the
// harness's blkback, one case per run, chosen by the command line. The test
// (test/block/*.test.ts) picks the disk, its features and its faults, and
// asserts on the output and on the disk afterwards.
//
//   info                   the negotiated device, one line
//   edges                  Solo5 test_blk's edge cases: last sector, past the end, short and misaligned buffers
//   random <seed> <rounds> <width>   random writes and reads, up to <width> in flight, checked against a model
//   indirect               one request beyond 11 pages (indirect descriptors), and one too many
//   barrier <seed>         write A, barrier, write C over A, submitted together: C wins
//   powerloss <seed>       flushed, unflushed, barrier and unflushed writes (the test cuts the power)
//   read <sector> <count>  one read, then a second: prints each result (error and hostile-backend tests)
//   write <sector> <count> one write
//   flush | barrier-op     one flush / one empty-ish barrier write
//   stall <deadline ms> <unmap wait ms> <settle ms> [reuse-all]
//                          a write, then read 0+8, write 2064+16 and read 64+8 in flight together (the
//                          test swallows or delays answers): each outcome and whether its pages stay
//                          shared, a later write, then pages reused from the pool must survive late
//                          answers (reuse-all = 1 also reuses shared pages, to show what that does)
import { block, boot, console, sched, time } from "../../runtime";
import { check, eq, result, Xorshift32 } from "../../runtime/testing";
import { fill, check as checkPattern } from "../blkcheck/pattern";

const args = boot.args();
const which = args.length > 0 ? args[0] : "";
const arg = (i: i32, def: u64 = 0): u64 => (args.length > i ? U64.parseInt(args[i]) : def);

function openDevice(): block.Device | null {
  const o = sched.wait(block.open());
  if (!o.ok) {
    console.log("open: " + o.error);
    return null;
  }
  return o.device;
}

/** Waits for an op; "ok" or its error. */
function outcome(op: block.BlockOp): string {
  sched.wait(op);
  return op.ok ? "ok" : op.error;
}

let rng = new Xorshift32(1);
function rand(): u32 {
  return rng.next();
}
function below(n: u64): u64 {
  return rng.below(n);
}

function info(dev: block.Device): void {
  const i = dev.info();
  console.log(
    "info: sectors=" + i.sectors.toString() + " sector-size=" + i.sectorSize.toString() + " physical=" + i.physicalSectorSize.toString() +
      " ro=" + (i.readOnly ? "1" : "0") + " flush=" + (i.flush ? "1" : "0") + " barrier=" + (i.barrier ? "1" : "0") +
      " max-pages=" + i.maxPages.toString() + " indirect=" + i.indirectSegments.toString() + " ring=" + i.ringEntries.toString() +
      " ring-order=" + i.ringPageOrder.toString() + "/" + i.maxRingPageOrder.toString() + " backend=" + i.backend,
  );
  check(true, "opened");
}

function edges(dev: block.Device): void {
  const i = dev.info();
  const n = i.sectors;
  const ss = i.sectorSize;
  const per = 4096 / ss;
  const pool = new block.BufferPool(4);
  const p = pool.get();
  const q = pool.get();
  const name = dev.name;
  // The last sector can be written and read back.
  if (!i.readOnly) {
    fill(p, 4096, 99, (n - 1) * <u64>ss);
    eq(outcome(dev.write(n - 1, [p], 1)), "ok", "write the last sector");
  }
  memory.fill(q, 0xaa, 4096);
  eq(outcome(dev.read(n - 1, [q], 1)), "ok", "read the last sector");
  if (!i.readOnly) check(checkPattern(q, ss, 99, (n - 1) * <u64>ss) < 0, "the last sector reads back as written");
  let untouched = true;
  for (let k: u32 = ss; k < 4096; k++) if (load<u8>(q + k) != 0xaa) untouched = false;
  check(untouched, "a one-sector read leaves the rest of the page alone");
  eq(outcome(dev.read(n, [p], 1)), name + ": sector " + n.toString() + "+1 past the end of a " + n.toString() + "-sector disk", "read just past the end");
  eq(outcome(dev.read(n - 1, per >= 2 ? [p] : [p, q], 2)), name + ": sector " + (n - 1).toString() + "+2 past the end of a " + n.toString() + "-sector disk", "read across the end");
  if (!i.readOnly)
    eq(outcome(dev.write(n, [p], 1)), name + ": sector " + n.toString() + "+1 past the end of a " + n.toString() + "-sector disk", "write past the end");
  eq(outcome(dev.read(U64.MAX_VALUE, [p], 1)), name + ": sector " + U64.MAX_VALUE.toString() + "+1 past the end of a " + n.toString() + "-sector disk", "a sector number near 2^64 does not wrap");
  eq(outcome(dev.read(0, [p], per + 1)), name + ": " + (per + 1).toString() + " sectors do not fit in 1 page of " + per.toString() + " sectors", "a buffer too short for the count");
  eq(outcome(dev.read(0, [p, q], 1)), name + ": 1 sectors leave page 1 unused: pass fewer pages", "more pages than the count needs");
  eq(outcome(dev.read(0, [p + 512])), name + ": buffer 0x" + (p + 512).toString(16) + " is not a 4 KiB-aligned I/O page", "a misaligned buffer");
  eq(outcome(dev.read(0, [])), name + ": a read needs at least one page", "no buffer at all");
  const many = new Array<usize>();
  for (let k = 0; k <= i.maxPages; k++) many.push(p);
  check(outcome(dev.read(0, many)).startsWith(name + ": " + (i.maxPages + 1).toString() + " pages in one request: the backend takes at most " + i.maxPages.toString()), "more pages than one request carries");
  eq(outcome(dev.read(0, [p])), "ok", "sector 0 still reads after the refusals");
  check(dev.inFlight() == 0, "nothing left in flight");
  const c = sched.wait(dev.close());
  eq(c.ok ? "ok" : c.error, "ok", "orderly disconnect");
}

function random(dev: block.Device, seed: u32, rounds: i32, width: i32): void {
  rng = new Xorshift32(seed);
  const i = dev.info();
  const ss = <u64>i.sectorSize;
  const per = <u64>(4096 / i.sectorSize);
  const total = i.sectors;
  const model = new Uint8Array(<i32>(total * ss));
  const maxPages = <u64>min(i.maxPages, 24);
  const pool = new block.BufferPool(0);
  let writes = 0;
  let reads = 0;
  let bad = 0;
  for (let r = 0; r < rounds && bad == 0; r++) {
    // Writes: non-overlapping extents, all in flight together (order among them is the backend's).
    const busy = new Uint8Array(<i32>total);
    const ops = new Array<sched.Future>();
    const held = new Array<Array<usize>>();
    for (let k = 0; k < width; k++) {
      const count = 1 + below(maxPages * per);
      const start = below(total - count + 1);
      let free = true;
      for (let s = start; s < start + count; s++) if (busy[<i32>s]) free = false;
      if (!free) continue;
      for (let s = start; s < start + count; s++) busy[<i32>s] = 1;
      const pages = pool.take(<i32>((count + per - 1) / per));
      for (let pg = 0; pg < pages.length; pg++) {
        for (let w: u32 = 0; w < 1024; w++) store<u32>(pages[pg] + (<usize>w << 2), rand());
        const off = (start + <u64>pg * per) * ss;
        const len = min<u64>(4096, (count - <u64>pg * per) * ss);
        memory.copy(model.dataStart + <usize>off, pages[pg], <usize>len);
      }
      ops.push(dev.write(start, pages, <u32>count));
      held.push(pages);
      writes++;
    }
    const j = sched.wait(sched.join(ops));
    if (!j.ok) {
      check(false, "round " + r.toString() + " writes: " + j.error);
      return;
    }
    for (let k = 0; k < held.length; k++) pool.putAll(held[k]);
    // Reads: random extents, overlapping freely, checked against the model.
    const rops = new Array<block.BlockOp>();
    const rstart = new Array<u64>();
    const rheld = new Array<Array<usize>>();
    for (let k = 0; k < width; k++) {
      const count = 1 + below(maxPages * per);
      const start = below(total - count + 1);
      const pages = pool.take(<i32>((count + per - 1) / per));
      rops.push(dev.read(start, pages, <u32>count));
      rstart.push(start);
      rheld.push(pages);
      reads++;
    }
    const jr = sched.wait(sched.join(changetype<Array<sched.Future>>(rops)));
    if (!jr.ok) {
      check(false, "round " + r.toString() + " reads: " + jr.error);
      return;
    }
    for (let k = 0; k < rops.length; k++) {
      const nsec = <u64>rops[k].nsec / (ss >> 9);
      for (let pg = 0; pg < rheld[k].length; pg++) {
        const off = (rstart[k] + <u64>pg * per) * ss;
        const len = min<u64>(4096, (nsec - <u64>pg * per) * ss);
        if (memory.compare(rheld[k][pg], model.dataStart + <usize>off, <usize>len) != 0) {
          bad++;
          check(false, "round " + r.toString() + ": read of sector " + rstart[k].toString() + " page " + pg.toString() + " differs from what was written");
          break;
        }
      }
      pool.putAll(rheld[k]);
    }
  }
  check(bad == 0, "every read matched the model");
  // The whole disk, once more, in 11-page reads.
  let mismatch: i64 = -1;
  const page = pool.take(11);
  for (let s: u64 = 0; s < total && mismatch < 0; s += 11 * per) {
    const count = min<u64>(11 * per, total - s);
    const pages = page.slice(0, <i32>((count + per - 1) / per));
    const op = sched.wait(dev.read(s, pages, <u32>count));
    if (!op.ok) {
      check(false, "final read: " + op.error);
      return;
    }
    for (let pg = 0; pg < pages.length; pg++) {
      const off = (s + <u64>pg * per) * ss;
      const len = min<u64>(4096, (count - <u64>pg * per) * ss);
      if (memory.compare(pages[pg], model.dataStart + <usize>off, <usize>len) != 0) mismatch = <i64>(off / ss);
    }
  }
  check(mismatch < 0, "the whole disk matches the model" + (mismatch < 0 ? "" : " (first bad sector " + mismatch.toString() + ")"));
  console.log("random: " + writes.toString() + " writes, " + reads.toString() + " reads, " + pool.size.toString() + " buffer pages");
  const c = sched.wait(dev.close());
  check(c.ok, "orderly disconnect" + (c.ok ? "" : ": " + c.error));
}

function indirect(dev: block.Device): void {
  const i = dev.info();
  const pool = new block.BufferPool(0);
  const n = min(i.maxPages, 64);
  const pages = pool.take(n);
  for (let k = 0; k < n; k++) fill(pages[k], 4096, 5, <u64>k * 4096);
  eq(outcome(dev.write(0, pages)), "ok", n.toString() + "-page write");
  for (let k = 0; k < n; k++) memory.fill(pages[k], 0, 4096);
  eq(outcome(dev.read(0, pages)), "ok", n.toString() + "-page read");
  let same = true;
  for (let k = 0; k < n; k++) if (checkPattern(pages[k], 4096, 5, <u64>k * 4096) >= 0) same = false;
  check(same, "it reads back as written");
}

function barrier(dev: block.Device, seed: u32): void {
  const pool = new block.BufferPool(0);
  const a = pool.take(8);
  const m = pool.take(1);
  const c = pool.take(8);
  for (let k = 0; k < 8; k++) {
    fill(a[k], 4096, seed, <u64>k * 4096);
    fill(c[k], 4096, seed + 1, <u64>k * 4096);
  }
  fill(m[0], 4096, seed + 2, 0);
  // All three are in flight together: only the barrier orders them.
  const ops = new Array<sched.Future>();
  ops.push(dev.write(0, a));
  ops.push(dev.barrier(64, m));
  ops.push(dev.write(0, c));
  const j = sched.wait(sched.join(ops));
  eq(j.ok ? "ok" : j.error, "ok", "write, barrier, write complete");
  const r = pool.take(8);
  eq(outcome(dev.read(0, r)), "ok", "read back");
  let newest = true;
  for (let k = 0; k < 8; k++) if (checkPattern(r[k], 4096, seed + 1, <u64>k * 4096) >= 0) newest = false;
  check(newest, "the write after the barrier is what the disk holds");
}

/** Writes sectors [start, start + count) with the pattern, in 11-page requests; "ok" or the error. */
function writeRange(dev: block.Device, pool: block.BufferPool, seed: u32, start: u64, count: u64, useBarrier: bool): string {
  const ss = <u64>dev.info().sectorSize;
  const per = 4096 / ss;
  const ops = new Array<sched.Future>();
  for (let s = start; s < start + count; s += 11 * per) {
    const n = min<u64>(11 * per, start + count - s);
    const pages = pool.take(<i32>((n + per - 1) / per));
    for (let pg = 0; pg < pages.length; pg++) fill(pages[pg], 4096, seed, (s + <u64>pg * per) * ss);
    ops.push(useBarrier ? dev.barrier(s, pages, <u32>n) : dev.write(s, pages, <u32>n));
  }
  const j = sched.wait(sched.join(ops));
  return j.ok ? "ok" : j.error;
}

function powerloss(dev: block.Device, seed: u32): void {
  const pool = new block.BufferPool(0);
  const per = <u64>(4096 / dev.info().sectorSize);
  const region = 8 * per; // 8 pages
  eq(writeRange(dev, pool, seed, 0, region, false), "ok", "write region 1");
  eq(outcome(dev.flush()), "ok", "flush");
  console.log("phase: flushed region 1");
  eq(writeRange(dev, pool, seed, region, region, false), "ok", "write region 2 (not flushed)");
  console.log("phase: wrote region 2");
  eq(writeRange(dev, pool, seed, 2 * region, per, true), "ok", "barrier write region 3");
  console.log("phase: barrier region 3");
  eq(writeRange(dev, pool, seed, 2 * region + per, region, false), "ok", "write region 4 (not flushed)");
  console.log("phase: wrote region 4");
}

function one(dev: block.Device, write: bool): void {
  const s = arg(1);
  const n = <u32>arg(2, 1);
  const per = 4096 / dev.info().sectorSize;
  const pool = new block.BufferPool(0);
  const pages = pool.take(<i32>((n + per - 1) / per));
  for (let k = 0; k < 2; k++) {
    const op = write ? dev.write(s, pages, n) : dev.read(s, pages, n);
    console.log((write ? "write" : "read") + " " + (k + 1).toString() + ": " + outcome(op));
  }
  check(true, "ran");
}

function stall(dev: block.Device): void {
  dev.front.requestTimeoutNs = <i64>arg(1, 30000) * time.NS_PER_MS;
  dev.front.unmapWaitNs = <i64>arg(2, 5000) * time.NS_PER_MS;
  const settle = <i64>arg(3, 0) * time.NS_PER_MS;
  const reuseAll = arg(4) == 1;
  const pool = new block.BufferPool(0);
  const first = pool.take(1);
  fill(first[0], 4096, 3, 0);
  console.log("write 0+8: " + outcome(dev.write(0, first)));
  const ops = new Array<block.BlockOp>();
  ops.push(dev.read(0, pool.take(1)));
  ops.push(dev.write(2064, pool.take(2)));
  ops.push(dev.read(64, pool.take(1)));
  sched.wait(new sched.AllSettled(changetype<Array<sched.Future>>(ops)));
  let kept = 0;
  for (let k = 0; k < ops.length; k++) {
    const op = ops[k];
    console.log(op.what + ": " + (op.ok ? "ok" : op.error) + " shared=" + (op.shared ? "1" : "0"));
    // The contract: a settled op's pages go back to the pool only when no longer shared.
    if (reuseAll || !op.shared) pool.putAll(op.pages);
    else kept += op.pages.length;
  }
  console.log("kept " + kept.toString() + " pages, given up " + dev.front.sharedPages.toString());
  console.log("later write 0+8: " + outcome(dev.write(0, first)));
  // Reuse every page the pool has, then let any late answer land.
  const reused = pool.take(pool.available());
  for (let k = 0; k < reused.length; k++) memory.fill(reused[k], 0x77, 4096);
  if (settle > 0) sched.wait(sched.sleep(settle));
  let bad = 0;
  for (let k = 0; k < reused.length; k++) {
    let same = true;
    for (let b: usize = 0; b < 4096; b++) if (load<u8>(reused[k] + b) != 0x77) same = false;
    if (!same) bad++;
  }
  console.log("reused " + reused.length.toString() + " pages: " + (bad == 0 ? "intact" : bad.toString() + " overwritten"));
  const c = sched.wait(dev.close());
  console.log("close: " + (c.ok ? "ok" : c.error));
  check(true, "ran");
}

function main(): void {
  const d = openDevice();
  if (!d) return;
  const dev = d!;
  if (which == "info") info(dev);
  else if (which == "edges") edges(dev);
  else if (which == "random") random(dev, <u32>arg(1, 1), <i32>arg(2, 4), <i32>arg(3, 16));
  else if (which == "indirect") indirect(dev);
  else if (which == "barrier") barrier(dev, <u32>arg(1, 1));
  else if (which == "powerloss") powerloss(dev, <u32>arg(1, 1));
  else if (which == "read") one(dev, false);
  else if (which == "write") one(dev, true);
  else if (which == "stall") stall(dev);
  else if (which == "flush") console.log("flush: " + outcome(dev.flush()));
  else if (which == "barrier-op") {
    const p = new block.BufferPool(1);
    console.log("barrier: " + outcome(dev.barrier(0, [p.get()])));
  } else console.log("blktest: unknown case \"" + which + "\"");
}

main();
result();
