// SQLite on the block-device VFS under real Xen (the test bed, one boot for the file):
// the contacts demo persists across two boots on one disk; a database written by a
// unikernel under Xen reads back in the harness and one written in the harness reads
// back under Xen (the same bytes on the same layout); a foreign disk is refused with
// the same message as in the harness; sqlstress gives the harness's checksums.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage } from "../../tools/lib/image.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import { runWasm } from "../../tools/harness/run.ts";
import { Disk } from "../../tools/harness/blkback.ts";
import { GuestResult, Testbed } from "../../tools/testbed/testbed.ts";

const BOOT_S = 420;
const MIB = 8;
const STRESS = "20 16,1024,65536 9";

function summary(r: GuestResult) {
  return `${r.domain}: ${r.detail}\nconsole:\n${r.console.slice(0, 3000)}\nxl: ${r.xl.join("\n")}\ndmesg: ${r.dmesg.join("\n")}`;
}
const last = (s: string) => s.trimEnd().split("\n").pop();

describe("SQLite under Xen", () => {
  let tb: Testbed;
  const r: Record<string, GuestResult> = {};
  let xenWritten: Buffer;
  let harnessDisk: Disk;
  let harnessRead: string;
  const tmp = mkdtempSync(join(tmpdir(), "xen-sqlite-"));

  beforeAll(
    async () => {
      const img = {
        contacts: (await buildImage("contacts")).xl,
        sqlvfs: (await buildImage("sqlvfs")).xl,
        sqlstress: (await buildImage("sqlstress")).xl,
      };
      // A disk the harness writes, for the Xen guest to read.
      harnessDisk = new Disk({ sectors: (MIB << 20) / 512 });
      expect(last(runWasm({ wasm: wasmPath("sqlvfs"), cmdline: "write 120 777", disks: [harnessDisk] }).console)).toBe("TEST PASS");
      harnessRead = runWasm({ wasm: wasmPath("sqlvfs"), cmdline: "read", disks: [harnessDisk] }).console;
      writeFileSync(join(tmp, "harness.img"), harnessDisk.durable);
      const foreign = Buffer.alloc(MIB << 20);
      for (let i = 0; i < foreign.length; i += 4) foreign.writeUInt32LE((i * 2654435761) >>> 0, i);
      writeFileSync(join(tmp, "foreign.img"), foreign);

      tb = await Testbed.start({ quiet: true, readyTimeoutS: BOOT_S });
      const run = (name: string, config: string, extra: string, disk: string) =>
        tb.run({ config, extra, name, disks: [disk], timeoutS: 300 }).then((g) => (r[name] = g));
      await tb.createDisk("contacts", { sizeMiB: 16 });
      await run("contacts-1", img.contacts, "", "contacts");
      await run("contacts-2", img.contacts, "", "contacts");
      await tb.createDisk("vfs", { sizeMiB: MIB });
      await run("vfs-write", img.sqlvfs, "write 150 900", "vfs");
      await run("vfs-read", img.sqlvfs, "read", "vfs");
      xenWritten = await tb.readDisk("vfs");
      await tb.createDisk("harness", { from: join(tmp, "harness.img") });
      await run("vfs-harness", img.sqlvfs, "read", "harness");
      await tb.createDisk("foreign", { from: join(tmp, "foreign.img") });
      await run("vfs-foreign", img.sqlvfs, "open", "foreign");
      await tb.createDisk("stress", { sizeMiB: 32 });
      await run("stress", img.sqlstress, STRESS, "stress");
    },
    (BOOT_S + 900 + 8 * 300) * 1000,
  );

  afterAll(async () => {
    if (tb) await tb.stop();
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it("contacts: the second boot finds the first boot's contacts", () => {
    const [a, b] = [r["contacts-1"], r["contacts-2"]];
    expect(a.outcome, summary(a)).toBe("poweroff");
    expect(a.console).toMatch(/^contacts: boot 1, 0 contacts already on vbd 51712$/m);
    expect(a.console).toMatch(/^contacts: 6 contacts, 4 at ac.uk, after 1 boots$/m);
    expect(a.console).toMatch(/^  Anil Madhavapeddy <avsm2@cl.cam.ac.uk> \+44 1223 000001$/m);
    expect(b.outcome, summary(b)).toBe("poweroff");
    expect(b.console).toMatch(/^contacts: boot 2, 6 contacts already on vbd 51712$/m);
    expect(b.console).toMatch(/^contacts: 12 contacts, 8 at ac.uk, after 2 boots$/m);
  });

  it("a database written under Xen reads back in a second guest and in the harness", () => {
    expect(last(r["vfs-write"].console), summary(r["vfs-write"])).toBe("TEST PASS");
    const read = r["vfs-read"].console;
    expect(read, summary(r["vfs-read"])).toMatch(/^sqlvfs: 150 rows, checksum \d+$/m);
    expect(last(read)).toBe("TEST PASS");
    expect(xenWritten.subarray(0, 16).toString("latin1")).toBe("MorganaSQLiteVFS");
    const h = runWasm({ wasm: wasmPath("sqlvfs"), cmdline: "read", disks: [new Disk({ bytes: new Uint8Array(xenWritten) })] });
    expect(h.console.split("\n")[0]).toBe(read.split("\n")[0]);
  });

  it("a database written in the harness reads back under Xen, identically", () => {
    const g = r["vfs-harness"];
    expect(g.outcome, summary(g)).toBe("poweroff");
    expect(harnessRead).toMatch(/^sqlvfs: 120 rows, checksum \d+$/m);
    expect(g.console.split("\n")[0]).toBe(harnessRead.split("\n")[0]);
  });

  it("a foreign disk is refused with the harness's message, no trap", () => {
    const g = r["vfs-foreign"];
    expect(g.outcome, summary(g)).toBe("poweroff");
    expect(last(g.console)).toBe(
      "FAIL: vbd 51712: the disk holds something else (no Morgana SQLite superblock in blocks 0 and 1): refusing to overwrite it; give the unikernel a blank disk",
    );
  });

  it("sqlstress under Xen computes the harness's checksums", () => {
    const g = r["stress"];
    expect(g.outcome, summary(g)).toBe("poweroff");
    expect(last(g.console)).toBe("TEST PASS");
    const sums = (s: string) =>
      [...s.matchAll(/^sqlstress: size (\d+) iterations \d+ live (\d+) checksum (\d+)/gm)].map((m) => m.slice(1).join(" "));
    const h = runWasm({ wasm: wasmPath("sqlstress"), cmdline: STRESS, disks: [new Disk({ sectors: 65536 })] });
    expect(sums(g.console)).toHaveLength(3);
    expect(sums(g.console)).toEqual(sums(h.console));
  });
});
