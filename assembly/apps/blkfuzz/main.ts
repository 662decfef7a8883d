// blkfuzz: the block path under a hostile backend (tools/fuzz): reads a disk that holds
// blkcheck's pattern of <seed> and checks every byte, then writes the pattern of
// <seed>+1, flushes, reads it back and checks it again. Requests go in windows of up
// to 8 of varied sizes, and every request is waited for until it settles (deadlines of
// <timeout-ms>), so a mangled answer must end as an error, never as data.
//
//   blkfuzz <seed> <sectors> <timeout-ms>
//
// Exactly one result line: TEST PASS, FAIL: wrong data: <where> (a check failed after
// the device said ok), or FAIL: <the error, as the runtime reports it>.
import { block, boot, console, sched } from "../../runtime";
import { fill, check } from "../blkcheck/pattern";

const WINDOW: i32 = 8;

function fail(why: string): void {
  console.log("FAIL: " + why);
}

/** A small PRNG for the request sizes (xorshift32): the same seed, the same requests. */
let rnd: u32 = 1;
function next(): u32 {
  rnd ^= rnd << 13;
  rnd ^= rnd >> 17;
  rnd ^= rnd << 5;
  return rnd;
}

/** Reads or writes sectors [0, total) of pattern `seed`; "" when all went well, else the result line's text. */
function pass(dev: block.Device, pool: block.BufferPool, writing: bool, seed: u32, total: u64): string {
  const info = dev.info();
  const ss = <u64>info.sectorSize;
  const perPage = <u64>(4096 / info.sectorSize);
  const maxReq = perPage * <u64>min(info.maxPages, 11);
  let sector: u64 = 0;
  while (sector < total) {
    const ops = new Array<block.BlockOp>();
    const starts = new Array<u64>();
    const counts = new Array<u32>();
    const bufs = new Array<Array<usize>>();
    const n = 1 + <i32>(next() % <u32>WINDOW);
    for (let k = 0; k < n && sector < total; k++) {
      const count = <u32>min(1 + <u64>(next() % <u32>maxReq), total - sector);
      const pages = pool.take(<i32>((<u64>count + perPage - 1) / perPage));
      if (pages.length == 0) return "out of memory for buffers";
      for (let p = 0; p < pages.length; p++) {
        if (writing) fill(pages[p], 4096, seed, (sector + <u64>p * perPage) * ss);
        else memory.fill(pages[p], 0xa5, 4096); // stale bytes: data the backend never wrote shows up
      }
      ops.push(writing ? dev.write(sector, pages, count) : dev.read(sector, pages, count));
      starts.push(sector);
      counts.push(count);
      bufs.push(pages);
      sector += <u64>count;
    }
    // Every request settles before any page is looked at or reused.
    let error = "";
    for (let k = 0; k < ops.length; k++) {
      sched.wait(ops[k]);
      if (!ops[k].ok && error.length == 0) error = ops[k].error;
    }
    if (error.length > 0) return error;
    for (let k = 0; k < ops.length; k++) {
      const pages = bufs[k];
      if (!writing) {
        for (let p = 0; p < pages.length; p++) {
          const off = (starts[k] + <u64>p * perPage) * ss;
          const len = <u32>min<u64>(4096, (<u64>counts[k] - <u64>p * perPage) * ss);
          const bad = check(pages[p], len, seed, off);
          if (bad >= 0) {
            const at = off + <u64>bad;
            return "wrong data: byte " + at.toString() + " (sector " + (at / ss).toString() + ") read as ok differs from the pattern of seed " + seed.toString();
          }
        }
      }
      if (!ops[k].shared) pool.putAll(pages); // pages a failed backend may still map are never reused
    }
  }
  return "";
}

function main(): void {
  const args = boot.args();
  if (args.length < 3) return fail("usage: blkfuzz <seed> <sectors> <timeout-ms>");
  const seed = <u32>U64.parseInt(args[0]);
  const timeoutNs = I64.parseInt(args[2]) * 1_000_000;
  rnd = seed | 1;
  const opts = new block.OpenOptions();
  opts.connectTimeoutNs = timeoutNs;
  opts.closeTimeoutNs = timeoutNs;
  opts.unmapTimeoutNs = timeoutNs;
  const o = sched.wait(block.open("", opts));
  if (!o.ok) return fail(o.error);
  const dev = o.device!;
  dev.front.requestTimeoutNs = timeoutNs;
  dev.front.unmapWaitNs = timeoutNs;
  const total = min(dev.info().sectors, U64.parseInt(args[1]));
  const pool = new block.BufferPool(WINDOW * 11);
  let why = pass(dev, pool, false, seed, total);
  if (why.length == 0) why = pass(dev, pool, true, seed + 1, total);
  if (why.length == 0) {
    const f = sched.wait(dev.flush());
    if (!f.ok) why = f.error;
  }
  if (why.length == 0) why = pass(dev, pool, false, seed + 1, total);
  if (why.length > 0) {
    sched.wait(dev.close()); // settles (its own deadlines); the result is the first error
    return fail(why);
  }
  const c = sched.wait(dev.close());
  if (!c.ok) return fail(c.error);
  console.log("TEST PASS: read, wrote, flushed and read back " + total.toString() + " sectors");
}

main();
