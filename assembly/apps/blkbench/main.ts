// blkbench: 4 KiB block I/O throughput of the unikernel on its first disk.
//
//   blkbench <ops> <depth> [span]
//
// Runs sequential read, sequential write, random read and random write, each
// <ops> one-page requests with up to <depth> in flight, over the first <span>
// sectors (default: the whole disk), and prints for each
//   bench: blk_<seq|rand>_<read|write>_iops <n> iops
//   bench: blk_<seq|rand>_<read|write>_mibs <n> MiBps
// then TEST PASS. tools/bench.ts sets these beside dom0 Linux on the same device.
import { block, boot, console, sched, time } from "../../runtime";
import { Xorshift32 } from "../../runtime/testing";

const rng = new Xorshift32(0x2545f491);

function run(dev: block.Device, pool: block.BufferPool, name: string, write: bool, random: bool, ops: i32, depth: i32, span: u64): bool {
  const per = <u64>(4096 / dev.info().sectorSize);
  const slots = span / per; // 4 KiB blocks in the span
  const pages = pool.take(depth);
  let next: u64 = 0;
  let done = 0;
  const t0 = time.monotonic();
  while (done < ops) {
    // One window of requests in flight, then the next.
    const win = new Array<sched.Future>();
    for (let k = 0; k < depth && done + k < ops; k++) {
      const blk = random ? rng.below(slots) : next++ % slots;
      win.push(write ? dev.write(blk * per, [pages[k]]) : dev.read(blk * per, [pages[k]]));
    }
    const j = sched.wait(sched.join(win));
    if (!j.ok) {
      console.log("FAIL: " + name + ": " + j.error);
      return false;
    }
    done += win.length;
  }
  const ns = time.monotonic() - t0;
  pool.putAll(pages);
  const secs = <f64>ns / 1e9;
  console.log("bench: blk_" + name + "_iops " + (<f64>ops / secs).toString() + " iops");
  console.log("bench: blk_" + name + "_mibs " + ((<f64>ops * 4096.0) / (1048576.0 * secs)).toString() + " MiBps");
  return true;
}

function main(): void {
  const args = boot.args();
  const ops = args.length > 0 ? I32.parseInt(args[0]) : 1000;
  const depth = args.length > 1 ? I32.parseInt(args[1]) : 1;
  if (ops <= 0 || depth <= 0 || depth > 256) {
    console.log("FAIL: usage: blkbench <ops> <depth 1..256> [span]");
    return;
  }
  const o = sched.wait(block.open());
  if (!o.ok) {
    console.log("FAIL: " + o.error);
    return;
  }
  const dev = o.device!;
  let span = dev.info().sectors;
  if (args.length > 2) span = min(span, U64.parseInt(args[2]));
  if (span < <u64>(4096 / dev.info().sectorSize)) {
    console.log("FAIL: the disk is smaller than one 4 KiB block");
    return;
  }
  const pool = new block.BufferPool(depth);
  if (!run(dev, pool, "seq_read", false, false, ops, depth, span)) return;
  if (!run(dev, pool, "seq_write", true, false, ops, depth, span)) return;
  if (!run(dev, pool, "rand_read", false, true, ops, depth, span)) return;
  if (!run(dev, pool, "rand_write", true, true, ops, depth, span)) return;
  const f = sched.wait(dev.flush());
  if (!f.ok) {
    console.log("FAIL: " + f.error);
    return;
  }
  sched.wait(dev.close());
  console.log("TEST PASS");
}

main();
