// Block storage under real Xen (the test bed): blkcheck writes a pattern to a
// phy/loop disk in one guest and powers off, a second guest on the same disk
// reads it back, and dom0's copy of the disk file is checked on the host. One
// test-bed boot for the whole file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImage } from "../../tools/lib/image.ts";
import { GuestResult, Testbed } from "../../tools/testbed/testbed.ts";
import { holds } from "../../tools/harness/pattern.ts";

const BOOT_S = 420;
const DISK_MIB = 4;
const SEED = 4242;

function summary(r: GuestResult) {
  return `${r.domain}: ${r.detail}\nconsole:\n${r.console.slice(0, 3000)}\nxl: ${r.xl.join("\n")}\ndmesg: ${r.dmesg.join("\n")}`;
}

describe("block storage under Xen", () => {
  let tb: Testbed;
  let write: GuestResult;
  let verify: GuestResult;
  let wrongSeed: GuestResult;
  let disk: Buffer;

  beforeAll(
    async () => {
      // Build before booting: a build error should not cost a boot.
      const img = (await buildImage("blkcheck")).xl;
      tb = await Testbed.start({ quiet: true, readyTimeoutS: BOOT_S });
      await tb.createDisk("blk", { sizeMiB: DISK_MIB });
      write = await tb.run({ config: img, extra: `write ${SEED}`, name: "blkcheck-write", disks: ["blk"], timeoutS: 300 });
      verify = await tb.run({ config: img, extra: `verify ${SEED}`, name: "blkcheck-verify", disks: ["blk"], timeoutS: 300 });
      wrongSeed = await tb.run({ config: img, extra: `verify ${SEED + 1}`, name: "blkcheck-wrong", disks: ["blk"], timeoutS: 300 });
      disk = await tb.readDisk("blk");
    },
    (BOOT_S + 900 + 3 * 300) * 1000,
  );

  afterAll(async () => {
    if (tb) await tb.stop();
  }, 60_000);

  it("the writer negotiates with Linux's blkback, writes and flushes the whole disk, and powers off", () => {
    expect(write.outcome, summary(write)).toBe("poweroff");
    // Linux's blkback offers 256 indirect segments and a ring of up to 16 pages: we take 4 (128 slots).
    expect(write.console).toMatch(
      new RegExp(
        `^blkcheck: vbd 51712: ${(DISK_MIB << 20) / 512} sectors of 512 bytes, flush, barrier, 256 pages per request, 128 ring slots$`,
        "m",
      ),
    );
    expect(write.console).toMatch(new RegExp(`^TEST PASS: wrote and flushed ${(DISK_MIB << 20) / 512} sectors, seed ${SEED}$`, "m"));
  });

  it("a second guest on the same disk reads the pattern back", () => {
    expect(verify.outcome, summary(verify)).toBe("poweroff");
    expect(verify.console).toMatch(new RegExp(`^TEST PASS: verified ${(DISK_MIB << 20) / 512} sectors, seed ${SEED}$`, "m"));
  });

  it("and a verifier with another seed fails at the first byte", () => {
    expect(wrongSeed.console).toMatch(new RegExp(`^FAIL: byte 0 \\(sector 0\\) differs from the pattern of seed ${SEED + 1}$`, "m"));
  });

  it("dom0's disk file holds the pattern, byte for byte", () => {
    expect(disk.length).toBe(DISK_MIB << 20);
    expect(holds(disk, SEED, 0, DISK_MIB << 20)).toBe(true);
  });
});
