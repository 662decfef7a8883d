// The fixture PV guest (test/fixtures/testbed-guest), built with gcc into the cache.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../tools/lib/paths.ts";
import { ensureBootFiles, TESTBED_CACHE } from "../../tools/testbed/testbed.ts";

const SRC = join(ROOT, "test", "fixtures", "testbed-guest");

/** Builds the fixture guest once per source version; returns the ELF's path. */
export function fixtureGuest(): string {
  const h = createHash("sha256");
  for (const f of readdirSync(SRC).sort()) h.update(f).update(readFileSync(join(SRC, f)));
  const dir = join(TESTBED_CACHE, "fixture", h.digest("hex").slice(0, 16));
  const elf = join(dir, "guest.elf");
  if (existsSync(elf)) return elf;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("bash", [join(SRC, "build.sh"), elf], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`building the fixture guest failed (is gcc installed?): ${r.stderr || r.error}`);
  return elf;
}

/** An xl config for the fixture guest whose behaviour is `mode` (see guest.c). */
export function fixtureConfig(mode: string, extraLines = ""): string {
  return (
    `name = "fx-${mode.split(" ")[0]}"\ntype = "pv"\nkernel = "${fixtureGuest()}"\nmemory = 16\nvcpus = 1\n` +
    `extra = "${mode}"\non_crash = "preserve"\n${extraLines}`
  );
}

/** Writes a file of garbage that xl cannot load as a kernel. */
export function brokenImage(): string {
  const p = join(TESTBED_CACHE, "fixture", "broken.xen");
  mkdirSync(join(TESTBED_CACHE, "fixture"), { recursive: true });
  writeFileSync(p, Buffer.from("this is not an ELF kernel, just garbage bytes\n".repeat(64)));
  return p;
}

/** A Linux PV guest (the dom0 kernel as a domU + a busybox initramfs): it supports xl save/restore. */
export function linuxGuestConfig(name = "linux"): string {
  const init = join(SRC, "linux-init");
  const h = createHash("sha256").update(readFileSync(init)).digest("hex").slice(0, 16);
  const dir = join(TESTBED_CACHE, "fixture", `linux-${h}`);
  const initrd = join(dir, "initrd.cpio.gz");
  if (!existsSync(initrd)) {
    const r = spawnSync(
      "bash",
      [
        "-euo",
        "pipefail",
        "-c",
        `
      t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
      mkdir -p "$t/bin" "$t/dev" "$t/proc"
      cp "$(command -v busybox)" "$t/bin/busybox"
      for a in sh echo sleep mount mkdir poweroff; do ln -s busybox "$t/bin/$a"; done
      cp "$1" "$t/init"; chmod +x "$t/init"
      mkdir -p "$2"; (cd "$t" && find . | cpio -o -H newc --quiet | gzip -1) > "$2/initrd.tmp" && mv "$2/initrd.tmp" "$3"`,
        "linux-initrd",
        init,
        dir,
        initrd,
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    if (r.status !== 0) throw new Error(`building the Linux fixture initramfs failed: ${r.stderr || r.error}`);
  }
  const kernel = ensureBootFiles({ quiet: true }).vmlinuz;
  return (
    `name = "${name}"\ntype = "pv"\nkernel = "${kernel}"\nramdisk = "${initrd}"\nmemory = 128\nvcpus = 1\n` +
    `extra = "console=hvc0 loglevel=1 rdinit=/init"\n`
  );
}
