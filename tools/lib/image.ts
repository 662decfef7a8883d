// The image build: app → wasm (asc) → C (wasm2c) → objects (gcc) → kernel ELF (ld,
// twice: see image-syms.ts) → stripped image + xl config. Every step that costs time
// is cached by content under .cache/image/: the asc output by the sources, wasm2c by the
// wasm, each object by its source, headers and flags.
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT, IMAGES_DIR, wasmPath } from "./paths.ts";
import { tool, toolVersion } from "./exec.ts";
import { cacheArea, cached, contentKey as sha, hashTree } from "./cache.ts";
import { compileApp } from "./asc.ts";
import { readWasm, moduleSignatures, KIND_FUNC, KIND_MEMORY } from "./wasm-info.ts";
import { wasmNamesByCSymbol, parseNm, textLayout, wasmSymsAsm } from "./image-syms.ts";
import { loadAppConfig, renderXl, AppConfig } from "./image-config.ts";
import {
  buildNative,
  checkNativeLink,
  checkNativeSelection,
  CLANG,
  describeBuild,
  inferSelection,
  NATIVE_MODULE,
  NativeBuild,
  NativeName,
  SHARED_MEMORY,
} from "./native.ts";
import { shimImportNames } from "./abi-sources.ts";
import { mergeDataSegments } from "./wasm-segments.ts";

const SHIM = join(ROOT, "shim");
const CACHE = cacheArea("image");
// Debian's wabt 1.0.32, by absolute path: npm's wabt (node_modules/.bin, first on npm's PATH)
// is 1.0.39, whose output follows a different runtime contract.
const WASM2C = "/usr/bin/wasm2c";

/** The imports the shim implements (functions Z_morganaZ_<name> in shim/*.c): a module
 * may import only these, from module "morgana" (shim/ABI.md §1, §3). */
export function shimImports(): string[] {
  return shimImportNames(SHIM); // read by tools/lib/abi-sources.ts, which test/abi/sources.test.ts checks
}

/** Shim sources, in link order; head.S first (its .text.head starts the image). */
const SHIM_ASM = ["head.S", "entry.S"];
const SHIM_C = ["main.c", "console.c", "time.c", "evtchn.c", "gnttab.c", "mm.c", "traps.c", "wasm_rt.c", "abi.c", "lib.c"];
const WASM_FLAVOURED_C = ["math.c"]; // built with the wasm code's flags (SSE)

export interface Step {
  name: string;
  ms: number;
  cached: boolean;
  detail?: string;
}
export interface Sizes {
  wasm: number;
  c: number;
  text: number;
  wasmText: number;
  image: number;
  bss: number;
  /** For an app linked with native modules: the selection, and its module's wasm, C and native code (part of wasmText). */
  native?: { names: NativeName[]; wasm: number; c: number; text: number };
}
export interface ImageResult {
  app: string;
  xen: string;
  xl: string;
  config: AppConfig;
  steps: Step[];
  sizes: Sizes;
}
export interface BuildOptions {
  log?: (line: string) => void;
}

let gccInfo: Promise<{ version: string; include: string; libgcc: string }> | null = null;
function gcc() {
  gccInfo ??= (async () => ({
    version: await toolVersion("gcc"),
    include: (await tool("gcc", ["-print-file-name=include"], "the image build")).trim(),
    libgcc: (await tool("gcc", ["-print-libgcc-file-name"], "the image build")).trim(),
  }))();
  return gccInfo;
}

/** The shim's headers and the kernel's code model, for everything linked into the image
 * (gcc for the shim and the app, clang for the native module). */
const KERNEL_FLAGS = [
  "-I",
  join(SHIM, "include"),
  "-I",
  SHIM,
  "-iquote",
  "/usr/include", // wasm-rt.h: the system's (wabt)
  "-mno-red-zone",
  "-mcmodel=kernel",
  "-fno-pic",
  "-fno-pie",
  "-fno-stack-protector",
  "-fno-asynchronous-unwind-tables",
  "-fno-omit-frame-pointer",
  "-fno-common",
];

/** Flags. Shim C never touches SSE (so trap handlers need not save it); the wasm code
 * uses SSE for floats, keeps frame pointers and its functions un-inlined and un-merged
 * so that trap reports name every wasm frame (traps.c). */
function flags(include: string) {
  const base = ["-O2", "-std=gnu11", "-Wall", "-ffreestanding", "-nostdinc", "-isystem", include, ...KERNEL_FLAGS];
  const shim = [...base, "-mgeneral-regs-only", "-fno-tree-loop-distribute-patterns"];
  const wasm = [
    ...base,
    "-fbuiltin",
    "-fno-math-errno",
    "-DNDEBUG",
    "-include",
    join(SHIM, "wasm-rt-config.h"),
    "-fno-inline-functions",
    "-fno-inline-small-functions",
    "-fno-inline-functions-called-once",
    "-fno-optimize-sibling-calls",
    "-fno-partial-inlining",
    "-fno-ipa-icf",
    "-w",
  ];
  return { base, shim, wasm };
}

/** The native module's C (SQLite's alone is 13 MB) is compiled once, by clang: gcc -O2 takes about twice
 * as long for 20% less code (sqlite/README.md has the measurements). The same
 * kernel code model, no red zone, frame pointers and no sibling calls (trap reports),
 * SSE for floats like the app's code. */
function clangWasmFlags(resourceInclude: string, opt: string) {
  return [
    opt,
    "-std=gnu11",
    "-ffreestanding",
    "-nostdinc",
    "-isystem",
    resourceInclude,
    ...KERNEL_FLAGS,
    "-fbuiltin",
    "-fno-math-errno",
    "-DNDEBUG",
    "-include",
    join(SHIM, "wasm-rt-config.h"),
    "-fno-inline-functions",
    "-fno-optimize-sibling-calls",
    "-w",
  ];
}

/** Checks the module against ABI.md §1, and against its native module (`native`, the
 * selection `names`, default read off the module), before any C is generated. */
export function checkModule(app: string, wasm: Uint8Array, native?: Uint8Array, names?: NativeName[]) {
  const info = readWasm(wasm);
  const known = shimImports();
  const want = moduleSignatures(wasm);
  const sel = names ?? inferSelection(want);
  const usesNative = sel.length > 0 || info.imports.some((i) => i.module === NATIVE_MODULE && i.kind === KIND_FUNC);
  if (usesNative) {
    const fail = (m: string) => new Error(m);
    checkNativeSelection(want, app, sel, fail); // an import no selected library provides: name the one to add
    if (!native) throw new Error(`${app}: links native modules (${sel.join("+")}) but none was given to check against`);
    checkNativeLink(want, app, moduleSignatures(native), `the native module (${sel.join("+")})`, sel, fail);
  }
  for (const imp of info.imports) {
    if (usesNative && (imp.module === NATIVE_MODULE || (`${imp.module}.${imp.name}` === SHARED_MEMORY && imp.kind === KIND_MEMORY)))
      continue;
    if (imp.module !== "morgana" || imp.kind !== KIND_FUNC)
      throw new Error(
        `${app}: import ${imp.module}.${imp.name} is not part of the Morgana ABI (shim/ABI.md §3 lists what a unikernel may import)`,
      );
    if (!known.includes(imp.name))
      throw new Error(`${app}: import morgana.${imp.name} is not implemented by the Xen shim yet (it implements ${known.join(", ")})`);
  }
  if (!info.exports.some((e) => e.name === "_start" && e.kind === KIND_FUNC))
    throw new Error(`${app}: the module exports no function _start (ABI.md §1; asc --exportStart _start)`);
  if (!info.exports.some((e) => e.name === "memory" && e.kind === KIND_MEMORY))
    throw new Error(`${app}: the module exports no memory "memory" (ABI.md §1)`);
  return info;
}

export async function buildImage(app: string, opts: BuildOptions = {}): Promise<ImageResult> {
  const log = opts.log ?? (() => {});
  const steps: Step[] = [];
  const step = async <T>(name: string, fn: () => Promise<{ value: T; cached: boolean; detail?: string }>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    const s: Step = { name, ms: performance.now() - t0, cached: r.cached, detail: r.detail };
    steps.push(s);
    log(`  ${name.padEnd(8)} ${s.cached ? "cached" : `${s.ms.toFixed(0)} ms`.padStart(6)}${r.detail ? `  ${r.detail}` : ""}`);
    return r.value;
  };

  const config = loadAppConfig(app);
  const g = await gcc();
  const f = flags(g.include);
  const w2cVersion = await toolVersion(WASM2C);

  // 0. The native module (tools/lib/native.ts has its own cache), for apps that select native libraries.
  let nat: NativeBuild | undefined;
  if (config.native.length)
    nat = await step("native", async () => {
      const b = await buildNative(config.native, { log });
      return { value: b, cached: b.cached, detail: `${describeBuild(b)}${b.compiled.length ? `, compiled ${b.compiled.join(", ")}` : ""}` };
    });
  const natWasm = nat ? readFileSync(nat.wasm) : undefined;

  // 1. asc, keyed by every AssemblyScript source, the config and the compiler version.
  const wasmFile = await step("asc", async () => {
    const ascVersion = JSON.parse(readFileSync(join(ROOT, "node_modules", "assemblyscript", "package.json"), "utf8")).version;
    // Every source under assembly/ except the other apps' folders.
    const others = join(ROOT, "assembly", "apps");
    const sources = hashTree(
      join(ROOT, "assembly"),
      (n) => n.endsWith(".ts") || n.endsWith(".json"),
      (d) => relative(others, d) !== app && relative(others, join(d, "..")) === "",
    );
    // The native module's layout decides the app's --memoryBase (asc.ts).
    const key = sha(app, ascVersion, readFileSync(join(ROOT, "asconfig.json")), sources, nat?.key ?? "");
    const out = join(CACHE, "asc", `${key}.wasm`);
    const hit = await cached(out, async (tmp) => {
      copyFileSync(await compileApp(app, "release"), tmp);
    });
    copyFileSync(out, wasmPath(app, "release"));
    return { value: out, cached: hit };
  });
  const wasm = readFileSync(wasmFile);
  const info = checkModule(app, wasm, natWasm, config.native);

  // 2. wasm2c, keyed by the wasm. The module is always named "app": one shim for all apps.
  // Its data segments merged first (wasm-segments.ts): one copy in init_memories per run, not per string.
  const w2cDir = join(CACHE, "wasm2c", sha(wasm, w2cVersion, "merged-data"));
  const cFile = join(w2cDir, "wasm-app.c");
  await step("wasm2c", async () => {
    let detail: string | undefined;
    const hit = await cached(w2cDir, async (tmp) => {
      mkdirSync(tmp, { recursive: true });
      const merged = mergeDataSegments(wasm);
      const input = join(tmp, "app-merged.wasm");
      writeFileSync(input, merged.bytes);
      await tool(WASM2C, [input, "-n", "app", "-o", join(tmp, "wasm-app.c")], "wasm2c");
      detail = `data segments ${merged.before} -> ${merged.after}`;
    });
    return { value: null, cached: hit, detail };
  });
  const cSource = readFileSync(cFile, "utf8");
  const names = wasmNamesByCSymbol(cSource, info);

  // 2b. wasm2c of the native module, keyed by its wasm: named "native", linked at C level.
  let natDir: string | undefined;
  let natNames: Map<string, string> | undefined;
  if (nat && natWasm) {
    natDir = join(CACHE, "wasm2c", sha(natWasm, w2cVersion, NATIVE_MODULE));
    const dir = natDir;
    await step("wasm2c", async () => {
      const hit = await cached(dir, async (tmp) => {
        mkdirSync(tmp, { recursive: true });
        await tool(WASM2C, [nat!.wasm, "-n", NATIVE_MODULE, "-o", join(tmp, "wasm-native.c")], "wasm2c (the native module)");
      });
      return { value: null, cached: hit, detail: `native (${nat!.names.join("+")})` };
    });
    natNames = wasmNamesByCSymbol(readFileSync(join(dir, "wasm-native.c"), "utf8"), readWasm(natWasm), NATIVE_MODULE);
  }

  // 3. Objects, in parallel, each keyed by its source, the headers it may include and the flags.
  const headers = hashTree(SHIM, (n) => n.endsWith(".h") && n !== "wasm-app.h") + readFileSync("/usr/include/wasm-rt.h", "latin1");
  const wasmHeader = readFileSync(join(w2cDir, "wasm-app.h"));
  type Job = { src: string; args: string[]; extra: (string | Uint8Array)[]; name: string; cc?: string };
  const appC: Job = { src: join(SHIM, "app.c"), args: [...f.shim, "-I", w2cDir], extra: [wasmHeader], name: "app.c" };
  const jobs: Job[] = [];
  if (natDir) {
    // The app's header names its instantiate parameters, one per imported module, in order.
    const proto = /void Z_app_instantiate\(Z_app_instance_t\*((?:, struct Z_\w+_instance_t\*)*)\);/.exec(wasmHeader.toString("latin1"));
    if (!proto) throw new Error("wasm-app.h declares no Z_app_instantiate (wasm2c version?)");
    const params = [...proto[1].matchAll(/struct Z_(\w+)_instance_t\*/g)].map((m) => (m[1] === NATIVE_MODULE ? "&native_instance" : "0"));
    const pages = moduleSignatures(wasm).memories.get(SHARED_MEMORY)!.initial;
    appC.args = [
      ...appC.args,
      "-I",
      natDir,
      "-DMORGANA_NATIVE=1",
      `-DAPP_MEMORY_PAGES=${pages}u`,
      `-DAPP_INSTANTIATE_ARGS=${params.join(", ")}`,
    ];
    appC.extra.push(readFileSync(join(natDir, "wasm-native.h")));
    // A module of lwIP alone at -Os (5 KB less x86 code in echo's image); with SQLite, -O2 (its apps' hot path).
    const cf = clangWasmFlags(join(nat!.clangResourceDir, "include"), nat!.names.includes("sqlite") ? "-O2" : "-Os");
    // First: the longest job (tens of seconds when not cached).
    jobs.push({ src: join(natDir, "wasm-native.c"), args: cf, extra: [nat!.clangVersion], name: "wasm-native.c", cc: CLANG });
  }
  jobs.push(
    ...SHIM_ASM.map((s) => ({ src: join(SHIM, s), args: f.base, extra: [], name: s })),
    ...SHIM_C.map((s) => ({ src: join(SHIM, s), args: f.shim, extra: [], name: s })),
    ...WASM_FLAVOURED_C.map((s) => ({ src: join(SHIM, s), args: f.wasm, extra: [], name: s })),
    appC,
    // app.json "optimize": "size": the app's code at -Os (the shim's C and math.c stay at -O2).
    { src: cFile, args: config.optimize === "size" ? f.wasm.map((a) => (a === "-O2" ? "-Os" : a)) : f.wasm, extra: [], name: "wasm-app.c" },
  );
  const objects = await step("cc", async () => {
    let compiled = 0;
    const objs: string[] = new Array(jobs.length);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const i = next++;
        const j = jobs[i];
        const key = sha(readFileSync(j.src), headers, ...j.extra, j.args.join(" "), g.version);
        // The wasm object keeps its name: the linker script places it by name (kernel.ld).
        const out = join(CACHE, "obj", key, j.name.replace(/\.[cS]$/, ".o"));
        const hit = await cached(out, async (tmp) => {
          await tool(j.cc ?? "gcc", [...j.args, "-c", j.src, "-o", tmp], `compiling ${j.name}`);
        });
        if (!hit) compiled++;
        objs[i] = out;
      }
    };
    await Promise.all([worker(), worker()]);
    return { value: objs, cached: compiled === 0, detail: `${compiled} of ${jobs.length} compiled` };
  });

  // 4. Link twice: the second link adds the wasm symbol table after all code.
  const work = join(CACHE, "link", app);
  mkdirSync(work, { recursive: true });
  const elf = join(work, `${app}.elf`);
  const link = async (syms: string) => {
    const symsObj = join(work, "wasm-syms.o");
    writeFileSync(join(work, "wasm-syms.S"), syms);
    await tool("gcc", [...f.base, "-c", join(work, "wasm-syms.S"), "-o", symsObj], "assembling the wasm symbol table");
    await tool(
      "ld",
      [
        "-nostdlib",
        "-T",
        join(SHIM, "kernel.ld"),
        "-z",
        "max-page-size=4096",
        "-z",
        "noexecstack",
        "--build-id=none",
        "-o",
        elf,
        ...objects,
        symsObj,
        g.libgcc,
      ],
      `linking ${app}`,
    );
    return parseNm(await tool("nm", ["-n", elf], "reading the image's symbols"));
  };
  await step("link", async () => {
    const first = await link(wasmSymsAsm([], names, natNames));
    const second = await link(wasmSymsAsm(first, names, natNames));
    if (textLayout(first) !== textLayout(second))
      throw new Error("the wasm symbol table moved code between the two links (shim/kernel.ld must place .wasm_syms after .text)");
    return { value: null, cached: false, detail: "2 passes" };
  });

  // 5. Strip, and the xl config.
  mkdirSync(IMAGES_DIR, { recursive: true });
  const xen = join(IMAGES_DIR, `${app}.xen`);
  const xl = join(IMAGES_DIR, `${app}.xl`);
  await step("strip", async () => {
    await tool("strip", ["-o", xen, elf], "stripping the image");
    writeFileSync(xl, renderXl(app, config, xen, join(IMAGES_DIR, `${app}.disk`)));
    return { value: null, cached: false };
  });

  const sections = await tool("size", ["-A", elf], "measuring the image");
  const sec = (n: string) => Number(new RegExp(`^\\${n}\\s+(\\d+)`, "m").exec(sections)?.[1] ?? 0);
  const finalSyms = parseNm(await tool("nm", ["-n", elf], "reading the image's symbols"));
  const at = (n: string) => finalSyms.find((s) => s.name === n)!.addr;
  const sizes: Sizes = {
    wasm: wasm.length,
    c: statSync(cFile).size,
    text: sec(".text"),
    wasmText: Number(at("wasm_text_end") - at("wasm_text_start")),
    image: statSync(xen).size,
    bss: sec(".bss"),
  };
  if (nat && natDir)
    sizes.native = {
      names: nat.names,
      wasm: natWasm!.length,
      c: statSync(join(natDir, "wasm-native.c")).size,
      text: Number(at("wasm_text_end") - at("wasm_native_text_start")),
    };
  return { app, xen, xl, config, steps, sizes };
}

export function sizeReport(s: Sizes): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`.padStart(10);
  return [
    `  wasm        ${kb(s.wasm)}`,
    `  C           ${kb(s.c)}`,
    `  text        ${kb(s.text)}   (wasm code ${kb(s.wasmText).trim()}, shim + hypercall page ${((s.text - s.wasmText) / 1024).toFixed(1)} KB)`,
    `  image       ${kb(s.image)}   (stripped ELF; .bss ${(s.bss / 1024).toFixed(0)} KB not in the file)`,
    ...(s.native
      ? [
          `  of which native (${s.native.names.join("+")}): wasm ${kb(s.native.wasm).trim()}, C ${kb(s.native.c).trim()}, code ${kb(s.native.text).trim()} (app code ${kb(s.wasmText - s.native.text).trim()})`,
        ]
      : []),
  ].join("\n");
}
