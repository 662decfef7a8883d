// conformance: checks the import ABI (shim/ABI.md) from inside the unikernel.
// It runs unchanged in the harness and under Xen and MUST print the same text on
// both (test/conformance.test.ts and the Xen boot tests compare them), so it
// prints verdicts, never values that differ between hosts (times, platform).
// Boot it with the command line "conformance check one two".
import * as abi from "../../runtime/abi";
import { boot, time } from "../../runtime";
import { check, result } from "../../runtime/testing";


// The end of linear memory now (allocations may grow it between checks).
function memEnd(): usize {
  return <usize>memory.size() << 16;
}

// §3.6 boot_info
check(abi.boot_info(0, 0) == 64, "boot_info(0, 0) tells the size, 64");
const bi = memory.data(80);
memory.fill(bi, 0xaa, 80);
check(abi.boot_info(bi, 8) == 64, "boot_info with a short buffer still returns 64");
check(load<u8>(bi + 8) == 0xaa, "boot_info writes no byte past len");
check(load<u32>(bi) == 1, "abi_version is 1");
check(abi.boot_info(memEnd() - 4, 64) == -abi.EFAULT, "boot_info past the end of memory is -EFAULT");
check(abi.boot_info(bi, 64) == 64, "boot_info fills 64 bytes");
const platform = load<u32>(bi + abi.BI_PLATFORM);
check(platform == 1 || platform == 2, "platform is Xen PV (1) or harness (2)");
check(load<u64>(bi + abi.BI_NR_PAGES) > 0, "nr_pages is not 0");
check(load<u32>(bi + abi.BI_DOMID) != 0xffffffff && load<u32>(bi + abi.BI_DOMID) != 0, "domid is known, and not dom0's");
check(load<u64>(bi + abi.BI_MEM_LIMIT) > 0, "mem_limit is not 0");
check(load<i64>(bi + abi.BI_BOOT_NS) <= time.monotonic(), "boot_ns is not in the future");

// §3.7 boot_cmdline
const full = boot.cmdline();
check(full == "conformance check one two", "the command line arrives unchanged");
const small = memory.data(4);
check(abi.boot_cmdline(small, 4) == full.length, "a short buffer gets the full length back");
check(load<u8>(small) == 0x63 && load<u8>(small + 3) == 0x66, "a short buffer gets the first bytes");
check(abi.boot_cmdline(memEnd(), 1) == -abi.EFAULT, "boot_cmdline past the end is -EFAULT");
const words = boot.args();
check(words.length == 4 && words[3] == "two", "args() splits on spaces");

// §3.1 console_write
check(abi.console_write(0, 0) == 0, "console_write of 0 bytes returns 0");
check(abi.console_write(memEnd() - 2, 4) == -abi.EFAULT, "console_write past the end is -EFAULT");
check(abi.console_write(0xffff_fff0, 32) == -abi.EFAULT, "console_write with a wrapping range is -EFAULT");

// §3.2, §3.3 clocks
let prev = time.monotonic();
let monotonic = true;
for (let i = 0; i < 10000; i++) {
  const t = time.monotonic();
  if (t < prev) monotonic = false;
  prev = t;
}
check(monotonic, "clock_monotonic never decreases over 10,000 reads");
const wall = time.wall();
check(wall > 1_577_836_800 * time.NS_PER_S && wall < 4_102_444_800 * time.NS_PER_S, "clock_wall is between 2020 and 2100");

// §3.4 block
const t0 = time.monotonic();
check(abi.block(t0 - 1) == 0, "block with a past deadline returns 0");
check(time.monotonic() - t0 < time.NS_PER_S, "block with a past deadline returns at once");
const deadline = time.monotonic() + 20 * time.NS_PER_MS;
let rc = 1;
while (rc != 0) rc = abi.block(deadline);
check(time.monotonic() >= deadline, "block returns 0 only once the deadline has passed");
const w0 = time.wall();
const m0 = time.monotonic();
time.sleep(50 * time.NS_PER_MS);
const dw = time.wall() - w0;
const dm = time.monotonic() - m0;
check(dm >= 50 * time.NS_PER_MS, "sleep(50 ms) lasts at least 50 ms");
check(dw > dm / 2 && dw < dm * 2 + 10 * time.NS_PER_MS, "wall and monotonic clocks advance together");

// §3.5 shutdown with bad reasons returns -EINVAL and does nothing
check(abi.shutdown(2) == -abi.EINVAL, "shutdown(SUSPEND) is -EINVAL in v1");
check(abi.shutdown(99) == -abi.EINVAL, "shutdown(99) is -EINVAL");
check(abi.shutdown(-1) == -abi.EINVAL, "shutdown(-1) is -EINVAL");

// memory.grow maps zeroed pages
const before = memory.size();
const got = memory.grow(2);
check(got == before && memory.size() == before + 2, "memory.grow(2) returns the old size and grows by 2");
const page = <usize>before << 16;
let zero = true;
for (let off: usize = 0; off < 2 << 16; off += 4096) if (load<u32>(page + off) != 0) zero = false;
check(zero, "grown pages read as zero");
store<u64>(page + (2 << 16) - 8, 0x1122334455667788);
check(load<u64>(page + (2 << 16) - 8) == 0x1122334455667788, "the last word of grown memory is writable");

result();
