// build:image without Xen: the ELF the shim and the build make, the xl config, the
// content cache, and the validation of what goes in (app.json, the module's imports).
// Boots under Xen are in test/xen/.
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// A private, empty cache: the first build below is a cold one. Set before the build
// modules load, since paths.ts reads it once.
process.env.MORGANA_CACHE = mkdtempSync(join(tmpdir(), "morgana-image-test-"));
const { buildImage, checkModule } = await import("../../tools/lib/image.ts");
const { parseAppConfig, renderXl, DEFAULT_CONFIG, ConfigError } = await import("../../tools/lib/image-config.ts");
const { IMAGES_DIR } = await import("../../tools/lib/paths.ts");

type Build = Awaited<ReturnType<typeof buildImage>>;

// ---- a minimal ELF64 reader: program headers, notes, section names ----
const PT_LOAD = 1,
  PT_NOTE = 4,
  PF_X = 1,
  PF_W = 2,
  PF_R = 4;
interface Phdr {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: number;
}
function elf(buf: Buffer) {
  expect(buf.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  expect(buf[4]).toBe(2); // ELFCLASS64
  expect(buf.readUInt16LE(18)).toBe(62); // EM_X86_64
  const entry = buf.readBigUInt64LE(24);
  const phoff = Number(buf.readBigUInt64LE(32)),
    phentsize = buf.readUInt16LE(54),
    phnum = buf.readUInt16LE(56);
  const phdrs: Phdr[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    phdrs.push({
      type: buf.readUInt32LE(o),
      flags: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 8)),
      vaddr: buf.readBigUInt64LE(o + 16),
      paddr: buf.readBigUInt64LE(o + 24),
      filesz: Number(buf.readBigUInt64LE(o + 32)),
      memsz: Number(buf.readBigUInt64LE(o + 40)),
    });
  }
  const shoff = Number(buf.readBigUInt64LE(40)),
    shentsize = buf.readUInt16LE(58),
    shnum = buf.readUInt16LE(60),
    shstrndx = buf.readUInt16LE(62);
  const strOff = Number(buf.readBigUInt64LE(shoff + shstrndx * shentsize + 24));
  const sections = new Map<string, { offset: number; size: number }>();
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    const nameAt = strOff + buf.readUInt32LE(o);
    const name = buf.subarray(nameAt, buf.indexOf(0, nameAt)).toString("latin1");
    sections.set(name, { offset: Number(buf.readBigUInt64LE(o + 24)), size: Number(buf.readBigUInt64LE(o + 32)) });
  }
  return { entry, phdrs, sections };
}

/** Xen's ELF notes (xen/include/public/elfnote.h): type -> descriptor bytes. */
function xenNotes(buf: Buffer, note: Phdr): Map<number, Buffer> {
  const notes = new Map<number, Buffer>();
  const align4 = (n: number) => (n + 3) & ~3;
  for (let p = note.offset; p < note.offset + note.filesz;) {
    const namesz = buf.readUInt32LE(p),
      descsz = buf.readUInt32LE(p + 4),
      type = buf.readUInt32LE(p + 8);
    const name = buf.subarray(p + 12, p + 12 + namesz - 1).toString("latin1");
    const desc = buf.subarray(p + 12 + align4(namesz), p + 12 + align4(namesz) + descsz);
    if (name === "Xen") notes.set(type, desc);
    p += 12 + align4(namesz) + align4(descsz);
  }
  return notes;
}
const cstr = (b: Buffer) => b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString("latin1");

describe("build:image hello", () => {
  let cold: Build;
  let warm: Build;
  let image: Buffer;
  beforeAll(async () => {
    cold = await buildImage("hello");
    warm = await buildImage("hello");
    image = readFileSync(cold.xen);
  }, 180_000);

  it("writes images/hello.xen and images/hello.xl", () => {
    expect(cold.xen).toBe(resolve(IMAGES_DIR, "hello.xen"));
    expect(cold.xl).toBe(resolve(IMAGES_DIR, "hello.xl"));
  });

  it("is a 64-bit ELF with the Xen notes a PV loader needs", () => {
    const e = elf(image);
    const note = e.phdrs.find((p) => p.type === PT_NOTE)!;
    expect(note).toBeDefined();
    const notes = xenNotes(image, note);
    const VIRT_BASE = 0xffffffff80000000n;
    expect(notes.get(3)!.readBigUInt64LE(0)).toBe(VIRT_BASE); // VIRT_BASE
    expect(notes.get(4)!.readBigUInt64LE(0)).toBe(VIRT_BASE); // PADDR_OFFSET
    expect(notes.get(1)!.readBigUInt64LE(0)).toBe(e.entry); // ENTRY
    expect(notes.get(2)!.readBigUInt64LE(0) % 4096n).toBe(0n); // HYPERCALL_PAGE, page aligned
    expect(cstr(notes.get(5)!)).toBe("xen-3.0"); // XEN_VERSION
    expect(cstr(notes.get(6)!)).toBe("Morgana"); // GUEST_OS
    expect(cstr(notes.get(8)!)).toBe("generic"); // LOADER
    for (const p of e.phdrs.filter((p) => p.type === PT_LOAD)) expect(p.paddr).toBe(p.vaddr);
  });

  it("keeps code and data apart: text R+X not writable, everything else not executable", () => {
    const e = elf(image);
    const loads = e.phdrs.filter((p) => p.type === PT_LOAD);
    const text = loads.find((p) => e.entry >= p.vaddr && e.entry < p.vaddr + BigInt(p.memsz))!;
    expect(text.flags).toBe(PF_R | PF_X);
    for (const p of loads.filter((p) => p !== text)) expect(p.flags & PF_X).toBe(0);
    expect(loads.some((p) => p.flags === (PF_R | PF_W))).toBe(true); // data + bss
    for (const p of loads) expect(Number(p.vaddr % 4096n)).toBe(0); // page-granular permissions
  });

  it("is stripped but keeps the wasm symbol table", () => {
    const e = elf(image);
    expect(e.sections.has(".symtab")).toBe(false);
    expect(e.sections.get(".wasm_syms")!.size).toBeGreaterThan(0);
    expect(image.includes(Buffer.from("~start\0"))).toBe(true);
  });

  it("is under 100 KB (issue 4)", () => {
    expect(image.length).toBeLessThan(100 * 1024);
    expect(cold.sizes.image).toBe(image.length);
    expect(cold.sizes.wasmText).toBeGreaterThan(0);
    expect(cold.sizes.text).toBeGreaterThan(cold.sizes.wasmText);
  });

  it("writes the xl config: name, memory, absolute kernel path, lifecycle, cmdline", () => {
    const xl = readFileSync(cold.xl, "utf8");
    expect(xl).toMatch(/^name = "hello"$/m);
    expect(xl).toMatch(/^type = "pv"$/m);
    expect(xl).toContain(`kernel = "${resolve(IMAGES_DIR, "hello.xen")}"`);
    expect(xl).toMatch(/^memory = 32$/m);
    expect(xl).toMatch(/^extra = "greetings from the xl config"$/m); // from assembly/apps/hello/app.json
    expect(xl).toMatch(/^on_poweroff = "destroy"$/m);
    expect(xl).toMatch(/^on_crash = "preserve"$/m);
    expect(xl).not.toMatch(/^(disk|vif) =/m);
  });

  it("compiles everything on a cold cache, and nothing but the link on a rebuild", () => {
    const step = (b: Build, n: string) => b.steps.find((s) => s.name === n)!;
    for (const n of ["asc", "wasm2c", "cc"]) expect(step(cold, n).cached).toBe(false);
    for (const n of ["asc", "wasm2c", "cc"]) expect(step(warm, n).cached).toBe(true);
    expect(readFileSync(warm.xen).equals(image)).toBe(true); // reproducible
  });
});

describe("build:image crash", () => {
  it("names every wasm function of the module in the symbol table", async () => {
    const r = await buildImage("crash");
    const image = readFileSync(r.xen);
    for (const name of [
      "assembly/apps/crash/main/descend",
      "assembly/apps/crash/main/recurseForever",
      "assembly/runtime/system/morganaAbort",
      "~start",
    ])
      expect(image.includes(Buffer.from(name + "\0")), name).toBe(true);
  }, 180_000);
});

describe("app.json", () => {
  const where = "assembly/apps/x/app.json";
  const err = (text: string) => {
    try {
      parseAppConfig(text, where);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error(`accepted: ${text}`);
  };

  it("gives defaults for every key", () => {
    expect(parseAppConfig("{}", where)).toEqual(DEFAULT_CONFIG);
    expect(parseAppConfig('{"memory": 64, "cmdline": "a b", "disk": true, "vif": true}', where)).toEqual({
      memory: 64,
      cmdline: "a b",
      disk: true,
      vif: true,
      native: [],
      optimize: "speed",
    });
  });

  it("rejects broken or hostile files, naming the file and the key", () => {
    expect(err("{memory: 1")).toMatch(/^assembly\/apps\/x\/app\.json: not valid JSON/);
    expect(err("[]")).toMatch(/app\.json: must be a JSON object/);
    expect(err("null")).toMatch(/must be a JSON object/);
    expect(err('{"memroy": 32}')).toMatch(/app\.json: unknown key "memroy"/);
    expect(err('{"__proto__": {"memory": 1}}')).toMatch(/unknown key "__proto__"/);
    expect(err('{"memory": "32"}')).toMatch(/app\.json: "memory" must be an integer/);
    expect(err('{"memory": 32.5}')).toMatch(/"memory" must be an integer/);
    expect(err('{"memory": 1e12}')).toMatch(/"memory" must be an integer/);
    expect(err('{"memory": 2}')).toMatch(/"memory" must be an integer number of MiB from 8/);
    expect(err('{"cmdline": "a\\" ; kernel = \\"/evil"}')).toMatch(/"cmdline" must be a string .* without quotes/);
    expect(err('{"cmdline": "a\\nb"}')).toMatch(/"cmdline"/);
    expect(err(`{"cmdline": "${"x".repeat(1024)}"}`)).toMatch(/at most 1023 bytes/);
    expect(err('{"disk": "yes"}')).toMatch(/"disk" must be true or false/);
    expect(err('{"vif": 1}')).toMatch(/"vif" must be true or false/);
  });

  it("adds disk and vif lines only when asked", () => {
    const xl = renderXl("net", { ...DEFAULT_CONFIG, cmdline: "-v", disk: true, vif: true }, "/i/net.xen", "/i/net.disk");
    expect(xl).toMatch(/^extra = "-v"$/m);
    expect(xl).toMatch(/^disk = \[ 'format=raw, vdev=xvda, access=rw, target=\/i\/net\.disk' \]$/m);
    expect(xl).toMatch(/^vif = \[ 'bridge=xenbr0' \]$/m);
  });
});

describe("module checks", () => {
  // (module (type (func)) (import "env" "seed" (func (type 0))) ...) by hand: magic,
  // version, a type section with one () -> () type, an import section with one function.
  const section = (id: number, body: number[]) => [id, body.length, ...body];
  const str = (s: string) => [s.length, ...Buffer.from(s)];
  const moduleImporting = (mod: string, name: string) =>
    new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...section(1, [1, 0x60, 0, 0]), ...section(2, [1, ...str(mod), ...str(name), 0, 0])]);

  it("refuses an import outside the ABI, naming it", () => {
    expect(() => checkModule("t", moduleImporting("env", "seed"))).toThrow(/import env\.seed is not part of the Morgana ABI/);
  });

  it("refuses an ABI import the shim does not implement", () => {
    expect(() => checkModule("t", moduleImporting("morgana", "no_such_call"))).toThrow(
      /morgana\.no_such_call is not implemented by the Xen shim/,
    );
  });

  it("requires the _start and memory exports", () => {
    expect(() => checkModule("t", moduleImporting("morgana", "console_write"))).toThrow(/exports no function _start/);
  });
});

describe("wasm symbol names", () => {
  it("pairs wasm2c's definitions with the name section by index, even where mangling collides", async () => {
    const { execFileSync } = await import("node:child_process");
    const { writeFileSync } = await import("node:fs");
    const { readWasm } = await import("../../tools/lib/wasm-info.ts");
    const { wasmNamesByCSymbol } = await import("../../tools/lib/image-syms.ts");
    const wabt = await (await import("wabt")).default();
    const mod = wabt.parseWat(
      "t.wat",
      `(module
      (import "morgana" "console_write" (func $cw (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $a/b (result i32) (i32.const 1))
      (func $a_b (result i32) (i32.const 2))
      (func (result i32) (i32.const 3))
      (func $~start (export "_start") (drop (call $a/b)) (drop (call $a_b)) (drop (call 3))))`,
    );
    const wasm = mod.toBinary({ write_debug_names: true }).buffer;
    mod.destroy();
    const dir = mkdtempSync(join(tmpdir(), "morgana-syms-"));
    writeFileSync(join(dir, "t.wasm"), wasm);
    execFileSync("/usr/bin/wasm2c", [join(dir, "t.wasm"), "-n", "app", "-o", join(dir, "wasm-app.c")]);
    const names = wasmNamesByCSymbol(readFileSync(join(dir, "wasm-app.c"), "utf8"), readWasm(wasm));
    expect([...names.values()]).toEqual(["a/b", "a_b", "wasm-function[3]", "~start"]);
    expect(new Set(names.keys()).size).toBe(4); // four distinct C symbols
  });
});

describe("the wasm reader (tools/lib/wasm-info.ts)", () => {
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  it("reads function signatures and imported memory limits", async () => {
    const { moduleSignatures } = await import("../../tools/lib/wasm-info.ts");
    const wabt = await (await import("wabt")).default();
    const mod = wabt.parseWat(
      "t.wat",
      `(module
      (import "morgana" "clock" (func (param i32) (result i64)))
      (import "env" "memory" (memory 3 9))
      (func (export "f") (param f64 i32)))`,
    );
    const sigs = moduleSignatures(mod.toBinary({}).buffer);
    mod.destroy();
    expect([...sigs.imports]).toEqual([["morgana.clock", "(i32) -> i64"]]);
    expect([...sigs.exports]).toEqual([["f", "(f64, i32) -> ()"]]);
    expect(sigs.memories.get("env.memory")).toEqual({ initial: 3, maximum: 9 });
  });

  it("refuses a module that is not wasm 1, or whose sections run past its end, naming what is wrong", async () => {
    const { readWasm } = await import("../../tools/lib/wasm-info.ts");
    expect(() => readWasm(new Uint8Array([1, 2, 3]))).toThrow(/not a wasm binary: shorter than its 8-byte header/);
    expect(() => readWasm(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]))).toThrow(/not a wasm binary of version 1 \(version 2\)/);
    // a type section that claims 5 bytes and has 2
    expect(() => readWasm(new Uint8Array([...header, 1, 5, 1, 0x60]))).toThrow(/truncated wasm: section 1 at byte 8 has 5 bytes/);
    // an import section whose one import's name runs past the section's end
    expect(() => readWasm(new Uint8Array([...header, 2, 3, 1, 9, 0x61]))).toThrow(
      /truncated wasm: 9 bytes at byte 12 pass the end of their section/,
    );
    // a LEB128 longer than 5 bytes
    expect(() => readWasm(new Uint8Array([...header, 3, 6, 0x80, 0x80, 0x80, 0x80, 0x80, 0]))).toThrow(/longer than 5 bytes/);
  });
});
