// blkcheck: writes a pattern over a virtual disk and makes it durable, or reads
// it back and verifies it; the write/read-back check of the block stack.
//
//   blkcheck write <seed> [sectors]    pattern over the first sectors (default: all), flush
//   blkcheck verify <seed> [sectors]   read back and compare
//
// Prints the device line, then exactly one result line: TEST PASS or FAIL: <why>.
import { block, boot, console, sched } from "../../runtime";
import { fill, check } from "./pattern";

/** Requests in flight at once. */
const WINDOW: i32 = 8;

function fail(why: string): void {
  console.log("FAIL: " + why);
}

function main(): void {
  const args = boot.args();
  const mode = args.length > 0 ? args[0] : "";
  if (args.length < 2 || (mode != "write" && mode != "verify")) return fail("usage: blkcheck write|verify <seed> [sectors]");
  const seed = <u32>U64.parseInt(args[1]);
  const o = sched.wait(block.open());
  if (!o.ok) return fail(o.error);
  const dev = o.device!;
  const info = dev.info();
  let total = info.sectors;
  if (args.length > 2) total = min(total, U64.parseInt(args[2]));
  console.log(
    "blkcheck: " + dev.name + ": " + info.sectors.toString() + " sectors of " + info.sectorSize.toString() + " bytes" +
      (info.readOnly ? ", read-only" : "") + (info.flush ? ", flush" : "") + (info.barrier ? ", barrier" : "") +
      ", " + info.maxPages.toString() + " pages per request, " + info.ringEntries.toString() + " ring slots",
  );
  const ss = <u64>info.sectorSize;
  const perPage = <u64>(4096 / info.sectorSize);
  const perReq = perPage * <u64>min(info.maxPages, 11);
  const pool = new block.BufferPool(WINDOW * 11);
  const writing = mode == "write";
  let sector: u64 = 0;
  while (sector < total) {
    // One window of requests, each up to 11 pages.
    const ops = new Array<block.BlockOp>();
    const starts = new Array<u64>();
    const counts = new Array<u32>();
    const bufs = new Array<Array<usize>>();
    for (let k = 0; k < WINDOW && sector < total; k++) {
      const count = <u32>min(perReq, total - sector);
      const pages = pool.take(<i32>((<u64>count + perPage - 1) / perPage));
      if (pages.length == 0) return fail("out of memory for buffers");
      if (writing) for (let p = 0; p < pages.length; p++) fill(pages[p], 4096, seed, (sector + <u64>p * perPage) * ss);
      ops.push(writing ? dev.write(sector, pages, count) : dev.read(sector, pages, count));
      starts.push(sector);
      counts.push(count);
      bufs.push(pages);
      sector += <u64>count;
    }
    const j = sched.wait(sched.join(changetype<Array<sched.Future>>(ops)));
    if (!j.ok) return fail(j.error);
    for (let k = 0; k < ops.length; k++) {
      const pages = bufs[k];
      if (!writing) {
        for (let p = 0; p < pages.length; p++) {
          const off = (starts[k] + <u64>p * perPage) * ss;
          const len = <u32>min<u64>(4096, (<u64>counts[k] - <u64>p * perPage) * ss);
          const bad = check(pages[p], len, seed, off);
          if (bad >= 0) {
            const at = off + <u64>bad;
            return fail("byte " + at.toString() + " (sector " + (at / ss).toString() + ") differs from the pattern of seed " + seed.toString());
          }
        }
      }
      pool.putAll(pages);
    }
  }
  if (writing) {
    const f = sched.wait(dev.flush());
    if (!f.ok) return fail(f.error);
  }
  const c = sched.wait(dev.close());
  if (!c.ok) return fail(c.error);
  console.log("TEST PASS: " + (writing ? "wrote and flushed " : "verified ") + total.toString() + " sectors, seed " + seed.toString());
}

main();
