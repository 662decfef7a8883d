// Native modules (tools/lib/native.ts): an app selects SQLite, lwIP or both with app.json
// "native"; each selection links into one wasm module with one libc. Here: the selection's
// validation, the lwIP+SQLite module's union of imports and exports, the lwiplink app end
// to end (harness, and its Xen image through wasm2c + the shim), and the checks that name
// the library an app forgot to select.
import { describe, it, expect, beforeAll } from "vitest";
import { readFileSync } from "node:fs";
import {
  buildNative,
  checkNativeSelection,
  NativeBuild,
  nativeLayout,
  nativeWasmPath,
  parseNativeSelection,
} from "../../tools/lib/native.ts";
import { LWIP_API, LWIP_IMPORTS } from "../../tools/lib/lwip.ts";
import { sqliteApiNames } from "../../tools/lib/sqlite.ts";
import { parseAppConfig, ConfigError } from "../../tools/lib/image-config.ts";
import { runWasm, loadModule, HarnessError } from "../../tools/harness/run.ts";
import { buildImage, checkModule, sizeReport } from "../../tools/lib/image.ts";
import { moduleSignatures } from "../../tools/lib/wasm-info.ts";
import { wasmPath } from "../../tools/lib/paths.ts";
import { wat } from "../helpers/wat.ts";

const VFS = [
  "open",
  "close",
  "read",
  "write",
  "truncate",
  "sync",
  "size",
  "characteristics",
  "delete",
  "access",
  "randomness",
  "sleep",
  "time",
];

let lwip: NativeBuild;
let sqlite: NativeBuild;
let both: NativeBuild;
let again: NativeBuild;
beforeAll(async () => {
  lwip = await buildNative(["lwip"]); // the global set-up's npm run build made lwiplink's already
  sqlite = await buildNative(["sqlite"]);
  both = await buildNative(["sqlite", "lwip"]); // the libraries' objects are cached: a link only
  again = await buildNative(["lwip", "sqlite"]);
}, 10 * 60_000);

describe('app.json "native"', () => {
  const err = (text: string) => {
    try {
      parseAppConfig(text, "assembly/apps/x/app.json");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error(`accepted: ${text}`);
  };

  it("selects libraries in any order, returned in link order; none by default", () => {
    expect(parseAppConfig("{}", "x").native).toEqual([]);
    expect(parseAppConfig('{"native": []}', "x").native).toEqual([]);
    expect(parseAppConfig('{"native": ["lwip"]}', "x").native).toEqual(["lwip"]);
    expect(parseAppConfig('{"native": ["sqlite", "lwip"]}', "x").native).toEqual(["lwip", "sqlite"]);
    expect(parseAppConfig('{"native": ["lwip", "sqlite"]}', "x").native).toEqual(["lwip", "sqlite"]);
  });

  it("refuses unknown names, duplicates and non-arrays, naming the valid names", () => {
    expect(err('{"native": ["sqlite", "postgres"]}')).toBe(
      'assembly/apps/x/app.json: "native" names an unknown module "postgres": the valid names are "lwip", "sqlite"',
    );
    expect(err('{"native": ["lwip", "lwip"]}')).toBe('assembly/apps/x/app.json: "native" names "lwip" twice');
    expect(err('{"native": "sqlite"}')).toMatch(
      /"native" must be an array of native module names \(the valid names are "lwip", "sqlite"\), got "sqlite"/,
    );
    expect(err('{"native": [1]}')).toMatch(/"native" must be an array/);
    expect(err('{"sqlite": true}')).toMatch(/"sqlite" is no longer a key: write "native": \["sqlite"\]/);
  });

  it("is refused by the build the same way", async () => {
    await expect(buildNative(["sqlite", "mysql"] as any)).rejects.toThrow(/unknown module "mysql": the valid names are "lwip", "sqlite"/);
    await expect(buildNative([])).rejects.toThrow(/the selection is empty/);
  });
});

describe("one native module per selection", () => {
  const mod = (b: NativeBuild) => new WebAssembly.Module(readFileSync(b.wasm));

  it("is copied to build/native-<names sorted, joined by +>.wasm, whatever the order asked", () => {
    expect(nativeWasmPath(["sqlite", "lwip"])).toMatch(/\/build\/native-lwip\+sqlite\.wasm$/);
    expect(both.copy).toBe(nativeWasmPath(["lwip", "sqlite"]));
    expect(readFileSync(both.copy).equals(readFileSync(both.wasm))).toBe(true);
    expect(lwip.copy).toMatch(/\/build\/native-lwip\.wasm$/);
    expect(both.names).toEqual(["lwip", "sqlite"]);
    expect(both.versions).toEqual({ sqlite: "3.53.2" });
  });

  it("is cached by content: the same selection again links nothing", () => {
    expect(again.cached).toBe(true);
    expect(again.key).toBe(both.key);
    expect(again.wasm).toBe(both.wasm);
  });

  it("imports the union of the libraries' callbacks from module app, and nothing else", () => {
    const imports = WebAssembly.Module.imports(mod(both));
    expect(imports.every((i) => i.module === "app" && i.kind === "function")).toBe(true);
    expect(imports.map((i) => i.name).sort()).toEqual([...VFS.map((n) => `morgana_vfs_${n}`), ...LWIP_IMPORTS].sort());
  });

  it("exports both libraries' APIs, one memory and __heap_base", () => {
    const exports = new Map(WebAssembly.Module.exports(mod(both)).map((e) => [e.name, e.kind]));
    for (const n of [...sqliteApiNames(), ...LWIP_API, "morgana_lwip_netif_add", "morgana_lwip_pbuf_payload"])
      expect(exports.get(n), n).toBe("function");
    expect([...exports.values()].filter((k) => k === "memory")).toHaveLength(1);
    expect(exports.get("__heap_base")).toBe("global");
  });

  it("links one libc, the largest stack of the selection, and both libraries' data below the app's", () => {
    // One copy of libc: the combined module is smaller than the two modules apart.
    const size = (b: NativeBuild) => readFileSync(b.wasm).length;
    expect(size(both)).toBeLessThan(size(lwip) + size(sqlite));
    expect(both.stackBytes).toBe(Math.max(lwip.stackBytes, sqlite.stackBytes));
    expect(both.stackBytes).toBe(256 * 1024);
    const l = nativeLayout(readFileSync(both.wasm));
    // Both libraries' static data lies above the stack: more than either has alone.
    for (const b of [lwip, sqlite])
      expect(l.heapBase - both.stackBytes).toBeGreaterThan(nativeLayout(readFileSync(b.wasm)).heapBase - b.stackBytes);
    expect(l.memoryBase % 65536).toBe(0);
  });
});

describe("lwiplink in the harness", () => {
  it("calls lwIP through module native, lwIP calls its morgana_lwip_* exports back, and it prints TEST PASS", () => {
    const r = runWasm({ wasm: wasmPath("lwiplink") });
    expect(r.console).toBe("TEST PASS\n");
    expect(r.outcome).toBe("poweroff");
  });

  it("imports lwIP's functions from module native and its memory as env.memory, and nothing of SQLite's", () => {
    const sigs = moduleSignatures(readFileSync(wasmPath("lwiplink")));
    const native = [...sigs.imports.keys()].filter((k) => k.startsWith("native."));
    expect(native).toContain("native.lwip_init");
    expect(native.some((k) => k.includes("sqlite"))).toBe(false);
    expect(sigs.memories.has("env.memory")).toBe(true);
    for (const n of LWIP_IMPORTS) expect(sigs.exports.has(n), n).toBe(true);
  });

  it("runs the debug build with the native module given as bytes", () => {
    const r = runWasm({ wasm: wasmPath("lwiplink", "debug"), native: readFileSync(lwip.copy) });
    expect(r.console).toBe("TEST PASS\n");
  });

  it("names the file and what to do when the native module cannot be read", () => {
    expect(() => runWasm({ wasm: wasmPath("lwiplink"), native: "/nonexistent/native-lwip.wasm" })).toThrow(
      /cannot read the native module \/nonexistent\/native-lwip\.wasm: no such file \(run npm run build\)/,
    );
  });

  it("refuses a native module without lwIP, naming the missing function", () => {
    expect(() => runWasm({ wasm: wasmPath("lwiplink"), native: readFileSync(sqlite.copy) })).toThrow(
      /import native\.\w+ is not exported by the native module given as bytes/,
    );
  });
});

describe("an app that imports what its selection does not provide", () => {
  // Shaped like an app built with "native": ["sqlite"] (VFS exported, env.memory imported) that also calls lwIP.
  const vfs = VFS.map((n) => `(func (export "morgana_vfs_${n}"))`).join(" ");
  const app = (imports: string) =>
    wat(`(module ${imports} (import "env" "memory" (memory 21)) (export "memory" (memory 0)) ${vfs} (func (export "_start")))`);
  const lwipInit = `(import "native" "lwip_init" (func))`;
  const fail = (m: string) => new Error(m);

  it("fails at build time naming the function and the selection to write", () => {
    const sigs = moduleSignatures(app(lwipInit));
    expect(() => checkNativeSelection(sigs, 'app "x"', ["sqlite"], fail)).toThrow(
      'app "x": import native.lwip_init is lwIP\'s, but the app selects "native": ["sqlite"]: write "native": ["lwip", "sqlite"] in its app.json',
    );
    expect(() => checkNativeSelection(sigs, 'app "x"', [], fail)).toThrow(
      /import native\.lwip_init is lwIP's, but the app selects no native modules: write "native": \["lwip"\] in its app.json/,
    );
    expect(() => checkNativeSelection(moduleSignatures(app(`(import "native" "sqlite3_step" (func))`)), "y", ["lwip"], fail)).toThrow(
      /import native\.sqlite3_step is SQLite's, .*write "native": \["lwip", "sqlite"\]/,
    );
    expect(() => checkNativeSelection(moduleSignatures(app(`(import "native" "no_such_call" (func))`)), "z", ["sqlite"], fail)).toThrow(
      /z: import native\.no_such_call is no native module's function \(the native modules are lwip, sqlite; a misspelt @external name\?\)/,
    );
    expect(() => checkNativeSelection(sigs, "ok", ["lwip", "sqlite"], fail)).not.toThrow();
  });

  it("is refused by the image build before any C is generated, the same way", () => {
    expect(() => checkModule("x", app(lwipInit), readFileSync(sqlite.wasm), ["sqlite"])).toThrow(
      /x: import native\.lwip_init is lwIP's, but the app selects "native": \["sqlite"\]: write "native": \["lwip", "sqlite"\]/,
    );
  });

  it("is refused by the harness when the module given lacks it", () => {
    expect(() => loadModule(app(lwipInit), readFileSync(sqlite.wasm))).toThrow(HarnessError);
    // Given bytes, the harness reads the selection off the module: lwIP's import and SQLite's VFS exports.
    expect(() => loadModule(app(lwipInit), readFileSync(sqlite.wasm))).toThrow(
      /import native\.lwip_init is not exported by the native module given as bytes/,
    );
  });
});

describe("lwiplink's Xen image", () => {
  it(
    "links the lwIP native module through wasm2c and the shim, and names lwIP's frames in its symbol table",
    async () => {
      const r = await buildImage("lwiplink");
      console.log(`lwiplink image:\n${sizeReport(r.sizes)}`);
      expect(r.sizes.native?.names).toEqual(["lwip"]);
      expect(r.sizes.native!.text).toBeGreaterThan(50_000);
      expect(r.sizes.wasmText).toBeGreaterThan(r.sizes.native!.text);
      expect(r.steps.find((s) => s.name === "native")).toBeDefined();
      const image = readFileSync(r.xen);
      // .wasm_syms holds the wasm names of both modules' functions.
      expect(image.includes("tcp_input\0")).toBe(true);
      expect(image.includes("etharp_output\0")).toBe(true);
      expect(image.includes("assembly/apps/lwiplink/main/morgana_lwip_linkoutput\0")).toBe(true);
    },
    10 * 60_000,
  );
});
