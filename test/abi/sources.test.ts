// One source of truth for the import ABI: the spec (shim/ABI.md), the runtime's
// declarations (assembly/runtime/abi.ts), the harness's table and implementation
// (tools/harness/abi.ts) and the shim's C definitions (shim/*.c) must list the same
// imports with the same signatures. The second half feeds the check doctored copies of
// the real files, so it is known to catch each kind of drift.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  AbiSource,
  compareAbiSources,
  importsFromAbiMd,
  importsFromAssemblyScript,
  importsFromShimC,
  importsFromTable,
  compareErrno,
  errnoFromShimH,
  errnoFromTs,
  readErrnoSources,
  readFileSources,
  shimImportNames,
} from "../../tools/lib/abi-sources.ts";
import { ABI_IMPORTS, abiImports } from "../../tools/harness/abi.ts";
import type { Domain } from "../../tools/harness/domain.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");
const HARNESS = "tools/harness/abi.ts";

const realSources = (): AbiSource[] => [...readFileSources(), importsFromTable(ABI_IMPORTS, HARNESS)];

describe("the import ABI's sources agree", () => {
  test("ABI.md, the runtime, the harness's table and the shim list the same imports with the same signatures", () => {
    const sources = realSources();
    expect(compareAbiSources(sources)).toEqual([]);
    for (const s of sources) expect(s.imports.size, s.label).toBeGreaterThan(0);
  });

  test("the harness implements each import of its table, taking as many arguments as the signature has", () => {
    // Building the object touches neither the domain nor the memory: its functions close over them.
    const impl = abiImports({} as Domain, () => new WebAssembly.Memory({ initial: 1 }));
    expect(Object.keys(impl).sort()).toEqual(Object.keys(ABI_IMPORTS).sort());
    for (const [name, signature] of Object.entries(ABI_IMPORTS)) {
      const params = signature
        .slice(1, signature.indexOf(")"))
        .split(",")
        .filter((p) => p.trim()).length;
      expect(impl[name].length, `morgana.${name} ${signature}`).toBe(params);
    }
  });

  test("the image build's list of shim imports is the shim's definitions", () => {
    expect(shimImportNames()).toEqual([...readFileSources()[2].imports.keys()].sort());
  });
});

describe("the check catches drift (doctored copies of the real sources)", () => {
  const md = read("shim/ABI.md");
  const as = read("assembly/runtime/abi.ts");
  const c = read("shim/abi.c");
  const sources = (edit: { md?: string; as?: string; c?: string; table?: Record<string, string> }) => [
    importsFromAbiMd(edit.md ?? md, "shim/ABI.md"),
    importsFromAssemblyScript(edit.as ?? as, "assembly/runtime/abi.ts"),
    importsFromShimC(edit.c ?? c, "shim/abi.c"),
    importsFromTable(edit.table ?? ABI_IMPORTS, HARNESS),
  ];
  /** text with `from` replaced once; fails the test if `from` is not there (the doctoring must bite). */
  const doctor = (text: string, from: string | RegExp, to: string) => {
    const out = text.replace(from, to);
    expect(out, `doctoring ${from}`).not.toBe(text);
    return out;
  };

  test("the undoctored copies agree", () => {
    expect(compareAbiSources(sources({}))).toEqual([]);
  });

  test("an import removed from the runtime's declarations is named, with the sources that still have it", () => {
    const doctored = doctor(as, /@external\("morgana", "evtchn_close"\)\nexport declare function evtchn_close\(port: i32\): i32;\n/, "");
    expect(compareAbiSources(sources({ as: doctored }))).toEqual([
      `import morgana.evtchn_close is in shim/ABI.md, shim/abi.c, ${HARNESS} but missing from assembly/runtime/abi.ts.`,
    ]);
  });

  test("a changed signature in the shim's C is named with every source's version", () => {
    const doctored = doctor(c, "Z_morganaZ_block(ctx_t *ctx, uint64_t deadline)", "Z_morganaZ_block(ctx_t *ctx, uint32_t deadline)");
    expect(compareAbiSources(sources({ c: doctored }))).toEqual([
      "import morgana.block has different signatures: shim/ABI.md says (i64) -> i32; assembly/runtime/abi.ts says (i64) -> i32; " +
        `shim/abi.c says (i32) -> i32; ${HARNESS} says (i64) -> i32.`,
    ]);
  });

  test("a changed result type in the runtime is caught (void vs i32)", () => {
    const doctored = doctor(
      as,
      "export declare function evtchn_mask(port: i32): i32;",
      "export declare function evtchn_mask(port: i32): void;",
    );
    expect(compareAbiSources(sources({ as: doctored }))).toEqual([
      "import morgana.evtchn_mask has different signatures: shim/ABI.md says (i32) -> i32; assembly/runtime/abi.ts says (i32) -> (); " +
        `shim/abi.c says (i32) -> i32; ${HARNESS} says (i32) -> i32.`,
    ]);
  });

  test("an import only the harness's table has is named", () => {
    expect(compareAbiSources(sources({ table: { ...ABI_IMPORTS, net_send: "(i32, i32) -> i32" } }))).toEqual([
      `import morgana.net_send is in ${HARNESS} but missing from shim/ABI.md, assembly/runtime/abi.ts, shim/abi.c.`,
    ]);
  });

  test("an import whose section is gone from ABI.md is named", () => {
    const doctored = doctor(md, "### 11.1 `entropy_fill(buf: i32, len: i32) -> i32`", "### 11.1 Entropy");
    expect(compareAbiSources(sources({ md: doctored }))).toEqual([
      `import morgana.entropy_fill is in assembly/runtime/abi.ts, shim/abi.c, ${HARNESS} but missing from shim/ABI.md.`,
    ]);
  });

  test("a shim definition that wasm2c's output could not call (no context first) is reported", () => {
    const doctored = doctor(c, "Z_morganaZ_evtchn_notify(ctx_t *ctx, uint32_t port)", "Z_morganaZ_evtchn_notify(uint32_t port)");
    const out = compareAbiSources(sources({ c: doctored }));
    expect(out[0]).toMatch(/^shim\/abi\.c:\d+: Z_morganaZ_evtchn_notify must take the instance's context \(ctx_t \*ctx\) first/);
    expect(out).toContain(
      `import morgana.evtchn_notify is in shim/ABI.md, assembly/runtime/abi.ts, ${HARNESS} but missing from shim/abi.c.`,
    );
  });

  test("a runtime declaration the reader cannot parse is reported, not skipped", () => {
    const doctored = doctor(as, "export declare function clock_wall(): i64;", "export declare function clock_wall(): i64 // no semicolon");
    expect(compareAbiSources(sources({ as: doctored }))).toContainEqual(
      expect.stringMatching(/^assembly\/runtime\/abi\.ts:\d+: cannot read this declaration/),
    );
  });

  test("a source that yields nothing is reported rather than compared as empty", () => {
    const out = compareAbiSources([importsFromShimC("", "shim/empty.c"), importsFromTable({}, HARNESS)]);
    expect(out).toEqual([
      "shim/empty.c lists no imports at all: the check could not read it.",
      `${HARNESS} lists no imports at all: the check could not read it.`,
    ]);
  });
});

describe("the errno values agree (Xen's xen/include/public/errno.h numbering)", () => {
  const check = (e: ReturnType<typeof readErrnoSources>) => compareErrno(e.spec, [e.runtime, e.harness], [e.shim]);

  test("every errno ABI.md lists is defined, with the same value, by the runtime and the harness; the shim's XEN_E* agree", () => {
    expect(check(readErrnoSources())).toEqual([]);
  });

  test("a shim value that differs is named with every source's value", () => {
    const e = readErrnoSources();
    const doctored = read("shim/xen.h").replace(/^#define XEN_EBUSY\s+16$/m, "#define XEN_EBUSY 15");
    expect(doctored).not.toBe(read("shim/xen.h"));
    expect(check({ ...e, shim: errnoFromShimH(doctored, "shim/xen.h") })).toEqual([
      "errno EBUSY has different values: shim/ABI.md says 16; assembly/runtime/abi.ts says 16; tools/harness/errno.ts says 16; shim/xen.h says 15.",
    ]);
  });

  test("an errno the spec lists but the runtime does not define is named", () => {
    const e = readErrnoSources();
    const doctored = read("assembly/runtime/abi.ts").replace("export const ENOSYS: i32 = 38;\n", "");
    expect(doctored).not.toBe(read("assembly/runtime/abi.ts"));
    expect(check({ ...e, runtime: errnoFromTs(doctored, "assembly/runtime/abi.ts") })).toEqual([
      "errno ENOSYS (-38) is in shim/ABI.md but not defined in assembly/runtime/abi.ts.",
    ]);
  });
});
