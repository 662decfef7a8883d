// SQLite's native module (tools/lib/sqlite.ts, native.ts: the selection ["sqlite"]) and its
// linking with an app, in the harness and in the Xen image: what it imports and exports, the
// content cache, the sqlversion app end to end, and the checks that reject a mis-linked module.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync, statSync } from "node:fs";
import { buildSqlite, sqliteApiNames, SqliteBuild, SQLITE_WASM } from "../../tools/lib/sqlite.ts";
import { nativeLayout } from "../../tools/lib/native.ts";
import { runWasm, loadModule, HarnessError } from "../../tools/harness/run.ts";
import { moduleSignatures } from "../../tools/lib/wasm-info.ts";
import { buildImage, checkModule, sizeReport } from "../../tools/lib/image.ts";
import { parseAppConfig, ConfigError, loadAppConfig } from "../../tools/lib/image-config.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import { wat } from "../helpers/wat.ts";

const VFS = ["open", "close", "read", "write", "truncate", "sync", "size", "characteristics", "delete", "access", "randomness", "sleep", "time"];

let first: SqliteBuild;
let second: SqliteBuild;
beforeAll(async () => {
  first = await buildSqlite(); // the global set-up's npm run build has normally built it already
  second = await buildSqlite();
}, 10 * 60_000);

describe("the native module of SQLite apps", () => {
  it("is SQLite 3.53.2 from the pinned amalgamation, copied to build/native-sqlite.wasm", () => {
    expect(first.version).toBe("3.53.2");
    expect(SQLITE_WASM).toMatch(/\/build\/native-sqlite\.wasm$/);
    expect(first.names).toEqual(["sqlite"]);
    expect(first.stackBytes).toBe(256 * 1024);
    expect(readFileSync(SQLITE_WASM).equals(readFileSync(first.wasm))).toBe(true);
    const size = statSync(first.wasm).size;
    expect(size).toBeGreaterThan(500_000);
    expect(size).toBeLessThan(2_000_000);
  });

  it("is cached by content: a second build compiles and links nothing and takes well under a second or two", () => {
    expect(second.cached).toBe(true);
    expect(second.compiled).toEqual([]);
    expect(second.key).toBe(first.key);
    expect(second.wasm).toBe(first.wasm);
    expect(second.ms).toBeLessThan(3000);
  });

  it("imports exactly the 13 VFS functions of module app, and nothing else", () => {
    const mod = new WebAssembly.Module(readFileSync(first.wasm));
    const imports = WebAssembly.Module.imports(mod);
    expect(imports.every((i) => i.module === "app" && i.kind === "function")).toBe(true);
    expect(imports.map((i) => i.name).sort()).toEqual(VFS.map((n) => `morgana_vfs_${n}`).sort());
  });

  it("exports every function sqlite3.ts declares, its memory and __heap_base", () => {
    const mod = new WebAssembly.Module(readFileSync(first.wasm));
    const exports = new Map(WebAssembly.Module.exports(mod).map((e) => [e.name, e.kind]));
    const api = sqliteApiNames();
    expect(api).toContain("sqlite3_step");
    expect(api).toContain("morgana_sqlite_init");
    for (const n of api) expect(exports.get(n), n).toBe("function");
    expect(exports.get("memory")).toBe("memory");
    expect(exports.get("__heap_base")).toBe("global");
  });

  it("leaves the app room above its stack and data: the app's memoryBase is __heap_base rounded up to a page", () => {
    const l = nativeLayout(readFileSync(first.wasm));
    expect(l.heapBase).toBeGreaterThan(256 * 1024); // the 256 KiB stack comes first
    expect(l.memoryBase % 65536).toBe(0);
    expect(l.memoryBase - l.heapBase).toBeLessThan(65536);
    // The app's data starts there (asc --memoryBase).
    const app = readFileSync(wasmPath("sqlversion"));
    expect(moduleSignatures(app).memories.get("env.memory")!.initial * 65536).toBeGreaterThan(l.memoryBase);
  });
});

describe("app.json \"native\": [\"sqlite\"]", () => {
  it("selects SQLite; the old \"sqlite\": true is refused, saying what to write instead", () => {
    expect(parseAppConfig("{}", "x").native).toEqual([]);
    expect(parseAppConfig('{"native": ["sqlite"]}', "x").native).toEqual(["sqlite"]);
    expect(loadAppConfig("sqlversion").native).toEqual(["sqlite"]);
    expect(() => parseAppConfig('{"sqlite": true}', "a/app.json")).toThrow(ConfigError);
    expect(() => parseAppConfig('{"sqlite": true}', "a/app.json")).toThrow(
      /a\/app.json: "sqlite" is no longer a key: write "native": \["sqlite"\]/,
    );
  });
});

describe("sqlversion in the harness", () => {
  it("prints SQLite's version and SELECT 1+1, and powers off", () => {
    const r = runWasm({ wasm: wasmPath("sqlversion") });
    expect(r.console).toBe("SQLite 3.53.2\nSELECT 1+1 = 2\nentropy_fill(16) = 16 (random)\n");
    expect(r.outcome).toBe("poweroff");
    expect(r.exitCode).toBe(0);
  });

  it("runs the debug build the same way, with the native module given as bytes", () => {
    const r = runWasm({ wasm: wasmPath("sqlversion", "debug"), native: readFileSync(SQLITE_WASM) });
    expect(r.console).toBe("SQLite 3.53.2\nSELECT 1+1 = 2\nentropy_fill(16) = 16 (random)\n");
  });

  it("leaves apps without native modules alone: hello has no native or env imports", () => {
    const r = runWasm({ wasm: wasmPath("hello"), native: "/nonexistent/native.wasm" });
    expect(r.outcome).toBe("poweroff");
  });
});

// A module shaped like an app linked with SQLite: env.memory imported, the VFS exported.
function linked(nativeImports: string, opts: { memory?: boolean; vfs?: boolean; start?: string } = {}): Uint8Array {
  const vfs = (opts.vfs ?? true)
    ? `(func (export "morgana_vfs_open") (param i32 i32 i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_close") (param i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_read") (param i32 i32 i32 i64) (result i32) i32.const 0)
       (func (export "morgana_vfs_write") (param i32 i32 i32 i64) (result i32) i32.const 0)
       (func (export "morgana_vfs_truncate") (param i32 i64) (result i32) i32.const 0)
       (func (export "morgana_vfs_sync") (param i32 i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_size") (param i32 i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_characteristics") (param i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_delete") (param i32 i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_access") (param i32 i32 i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_randomness") (param i32 i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_sleep") (param i32) (result i32) i32.const 0)
       (func (export "morgana_vfs_time") (result i64) i64.const 0)`
    : "";
  const mem = (opts.memory ?? true) ? `(import "env" "memory" (memory 6)) (export "memory" (memory 0))` : `(memory (export "memory") 6)`;
  return wat(`(module ${nativeImports} ${mem} ${vfs} (func (export "_start") ${opts.start ?? ""}))`);
}

describe("linking checks", () => {
  it("a correctly linked module passes", () => {
    const m = linked(`(import "native" "sqlite3_libversion" (func (result i32)))`);
    expect(() => loadModule(m)).not.toThrow();
    expect(() => checkModule("m", m, readFileSync(SQLITE_WASM))).not.toThrow();
  });

  it("an import SQLite does not export is rejected, by name, in the harness and by the image build", () => {
    const m = linked(`(import "native" "sqlite3_load_extension" (func (param i32 i32 i32 i32) (result i32)))`);
    expect(() => loadModule(m)).toThrow(HarnessError);
    expect(() => loadModule(m)).toThrow(/import native\.sqlite3_load_extension is not exported by \S+\/build\/native-sqlite\.wasm/);
    expect(() => checkModule("m", m, readFileSync(SQLITE_WASM))).toThrow(
      /import native\.sqlite3_load_extension is not exported by the native module \(sqlite\)/,
    );
  });

  it("an import with another signature than SQLite's export is rejected", () => {
    const m = linked(`(import "native" "sqlite3_step" (func (param i64) (result i32)))`);
    expect(() => loadModule(m)).toThrow(/import native\.sqlite3_step has type \(i64\) -> i32, but \S+ exports it as \(i32\) -> i32/);
    expect(() => checkModule("m", m, readFileSync(SQLITE_WASM))).toThrow(/sqlite3_step has type/);
  });

  it("a module that imports SQLite but not its memory, or lacks the VFS exports, is rejected", () => {
    const step = `(import "native" "sqlite3_step" (func (param i32) (result i32)))`;
    expect(() => loadModule(linked(step, { memory: false }))).toThrow(/imports from module "native" but not the memory env\.memory/);
    expect(() => loadModule(linked(step, { vfs: false }))).toThrow(
      /exports no function morgana_vfs_\w+, which \S+ imports for SQLite \(asc entry assembly\/runtime\/sqlite\/exports\.ts missing\?\)/,
    );
  });

  it("a trap inside SQLite's code is reported like any other, with SQLite's function names", () => {
    const m = linked(`(import "native" "sqlite3_step" (func $step (param i32) (result i32)))`, {
      start: "(drop (call $step (i32.const -16)))", // a statement pointer at the top of the address space
    });
    const r = runWasm({ wasm: m });
    expect(r.outcome).toBe("crash");
    expect(r.trap!.reason).toBe("out of bounds memory access");
    expect(r.trap!.frames).toContain("sqlite3_step");
    expect(r.console).toMatch(/^TRAP: out of bounds memory access\n(  at \S+\n)*  at sqlite3_step\n/m);
  });

  it("env.memory without SQLite is still not part of the ABI", () => {
    const m = wat(`(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)) (func (export "_start")))`);
    expect(() => loadModule(m)).toThrow(/import env\.memory \(memory\) is not part of the Morgana ABI v1/);
  });
});

describe("sqlversion's Xen image", () => {
  it("builds (SQLite's C compiled once), names SQLite frames in its symbol table, and rebuilds warm in seconds", async () => {
    const cold = await buildImage("sqlversion");
    const report = sizeReport(cold.sizes);
    console.log(`sqlversion image:\n${report}\n${cold.steps.map((s) => `  ${s.name} ${s.cached ? "cached" : `${s.ms.toFixed(0)} ms`} ${s.detail ?? ""}`).join("\n")}`);
    expect(cold.sizes.native?.names).toEqual(["sqlite"]);
    expect(cold.sizes.native!.text).toBeGreaterThan(1_000_000);
    expect(cold.sizes.wasmText).toBeGreaterThan(cold.sizes.native!.text);
    expect(report).toMatch(/of which native \(sqlite\): wasm/);
    const image = readFileSync(cold.xen);
    // .wasm_syms holds the wasm names of both modules' functions.
    expect(image.includes("sqlite3VdbeExec\0")).toBe(true);
    expect(image.includes("assembly/apps/sqlversion/main/cString\0")).toBe(true);
    expect(readFileSync(cold.xl, "utf8")).toMatch(/^memory = 32$/m);

    const t0 = performance.now();
    const warm = await buildImage("sqlversion");
    const ms = performance.now() - t0;
    expect(warm.steps.find((s) => s.name === "cc")!.cached).toBe(true);
    expect(warm.steps.filter((s) => s.name === "wasm2c").every((s) => s.cached)).toBe(true);
    expect(ms).toBeLessThan(15_000);
  }, 10 * 60_000);
});
