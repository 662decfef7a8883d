// The import ABI (shim/ABI.md) is written down in four places: the spec, the runtime's
// declarations (assembly/runtime/abi.ts), the harness's table (tools/harness/abi.ts) and
// the shim's C definitions (shim/*.c). This module reads each of them into one shape,
// name -> wasm signature ("(i32, i32) -> i32", as tools/harness/signatures.ts writes it),
// so that test/abi/sources.test.ts can hold them to each other, and the image build can
// ask which imports the shim implements.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./paths.ts";

export const ABI_MODULE = "morgana";
export const SHIM_DIR = join(ROOT, "shim");

/** The imports one source lists, and what it could not read (each a full sentence). */
export interface AbiSource {
  /** Where the list comes from, as the messages name it (a path). */
  label: string;
  imports: Map<string, string>;
  errors: string[];
}

const sig = (params: string[], result: string | null) => `(${params.join(", ")}) -> ${result ?? "()"}`;

/** The line number of offset `at` in `text`. */
const lineOf = (text: string, at: number) => text.slice(0, at).split("\n").length;

/** Comments blanked out, newlines kept, so offsets and line numbers still hold. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, " "));
}

function add(src: AbiSource, name: string, signature: string, line: number) {
  if (src.imports.has(name)) src.errors.push(`${src.label}:${line}: import ${ABI_MODULE}.${name} is declared twice.`);
  else src.imports.set(name, signature);
}

// AssemblyScript types that lower to each wasm value type (wasm32: usize is i32).
const AS_TYPES: Record<string, string> = {
  i32: "i32",
  u32: "i32",
  usize: "i32",
  isize: "i32",
  bool: "i32",
  i8: "i32",
  u8: "i32",
  i16: "i32",
  u16: "i32",
  i64: "i64",
  u64: "i64",
  f32: "f32",
  f64: "f64",
};

/** The `@external("morgana", name)` declarations of assembly/runtime/abi.ts. */
export function importsFromAssemblyScript(text: string, label: string): AbiSource {
  const src: AbiSource = { label, imports: new Map(), errors: [] };
  const code = stripComments(text);
  const decl = /@external\(\s*"([^"]*)"\s*,\s*"([^"]*)"\s*\)\s*(?:export\s+)?declare\s+function\s+\w+\s*\(([^)]*)\)\s*:\s*(\w+)\s*;/g;
  const parsed = new Set<number>();
  for (const m of code.matchAll(decl)) {
    const line = lineOf(code, m.index);
    parsed.add(line);
    const [, module, name, params, result] = m;
    if (module !== ABI_MODULE) {
      src.errors.push(`${label}:${line}: ${module}.${name} is imported from module "${module}", not "${ABI_MODULE}".`);
      continue;
    }
    const types: string[] = [];
    for (const p of params
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const t = /^\w+\s*:\s*(\w+)$/.exec(p)?.[1];
      if (!t || !AS_TYPES[t]) {
        src.errors.push(
          `${label}:${line}: parameter "${p}" of ${name} has no wasm value type this check knows (${Object.keys(AS_TYPES).join(", ")}).`,
        );
        continue;
      }
      types.push(AS_TYPES[t]);
    }
    if (result !== "void" && !AS_TYPES[result]) {
      src.errors.push(`${label}:${line}: the result type ${result} of ${name} has no wasm value type this check knows.`);
      continue;
    }
    add(src, name, sig(types, result === "void" ? null : AS_TYPES[result]), line);
  }
  // Every external or declared function must have been read above: one the pattern missed
  // would be an import nobody compares.
  for (const m of code.matchAll(/@external\b|\bdeclare\s+function\b/g)) {
    const line = lineOf(code, m.index);
    if (!parsed.has(line) && !parsed.has(line - 1))
      src.errors.push(
        `${label}:${line}: cannot read this declaration: write it as @external("${ABI_MODULE}", "name") export declare function name(a: i32): i32;`,
      );
  }
  return src;
}

// C types wasm2c 1.0.32 uses for each wasm value type (u32/u64 are its own typedefs).
const C_TYPES: Record<string, string> = {
  uint32_t: "i32",
  int32_t: "i32",
  u32: "i32",
  s32: "i32",
  uint64_t: "i64",
  int64_t: "i64",
  u64: "i64",
  s64: "i64",
  float: "f32",
  f32: "f32",
  double: "f64",
  f64: "f64",
};

/** The definitions Z_morganaZ_<name>(ctx, ...) in one C file: the functions wasm2c's
 * output calls for the imports of module "morgana", the instance's context first. */
export function importsFromShimC(text: string, label: string, into?: AbiSource): AbiSource {
  const src: AbiSource = into ?? { label, imports: new Map(), errors: [] };
  const code = stripComments(text);
  for (const m of code.matchAll(/Z_morganaZ_(\w+)\s*\(([^)]*)\)\s*([{;]?)/g)) {
    if (m[3] !== "{") continue; // a call or a prototype, not the definition
    const line = lineOf(code, m.index);
    const name = m[1];
    // The return type: the words before the name on its line (or, alone, on the line above).
    const lines = code.slice(0, m.index).split("\n");
    let ret = lines.pop()!.trim();
    if (!ret) ret = (lines.pop() ?? "").trim();
    ret = ret.replace(/\b(static|inline|extern)\b/g, "").trim();
    const params = m[2].split(",").map((s) => s.replace(/\s+/g, " ").trim());
    if (!/^(ctx_t|struct Z_morgana_instance_t) ?\*/.test(params[0] ?? "")) {
      src.errors.push(
        `${label}:${line}: Z_morganaZ_${name} must take the instance's context (ctx_t *ctx) first, as wasm2c 1.0.32 passes it.`,
      );
      continue;
    }
    const types: string[] = [];
    for (const p of params.slice(1)) {
      const t = /^(?:const )?(\w+) \w+$/.exec(p)?.[1];
      if (!t || !C_TYPES[t]) {
        src.errors.push(
          `${label}:${line}: parameter "${p}" of Z_morganaZ_${name} is not a C type wasm2c uses for a wasm value (${Object.keys(C_TYPES).join(", ")}).`,
        );
        continue;
      }
      types.push(C_TYPES[t]);
    }
    if (ret !== "void" && !C_TYPES[ret]) {
      src.errors.push(`${label}:${line}: the return type "${ret}" of Z_morganaZ_${name} is not a C type wasm2c uses for a wasm value.`);
      continue;
    }
    add(src, name, sig(types, ret === "void" ? null : C_TYPES[ret]), line);
  }
  return src;
}

/** The imports every shim/*.c file defines, read as one source named by the files that define them. */
export function readShimImports(dir = SHIM_DIR): AbiSource {
  const src: AbiSource = { label: "shim/*.c", imports: new Map(), errors: [] };
  const files: string[] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith(".c"))
    .sort()) {
    const before = src.imports.size;
    importsFromShimC(readFileSync(join(dir, f), "utf8"), `shim/${f}`, src);
    if (src.imports.size > before) files.push(`shim/${f}`);
  }
  if (files.length) src.label = files.join(" + ");
  return src;
}

/** Names of the imports the shim implements: a module may import only these (ABI.md §1). */
export function shimImportNames(dir = SHIM_DIR): string[] {
  return [...readShimImports(dir).imports.keys()].sort();
}

/** The imports shim/ABI.md specifies: each `name(a: i32, ...) -> r` in a ### heading. */
export function importsFromAbiMd(text: string, label: string): AbiSource {
  const src: AbiSource = { label, imports: new Map(), errors: [] };
  text.split("\n").forEach((lineText, i) => {
    if (!/^###\s/.test(lineText)) return;
    for (const m of lineText.matchAll(/`(\w+)\(([^)]*)\)\s*->\s*([^`]+)`/g)) {
      const types = m[2]
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
        .map((p) => p.replace(/^\w+\s*:\s*/, ""));
      const result = m[3].trim();
      const bad = [...types, result].find((t) => !/^(i32|i64|f32|f64|\(\))$/.test(t));
      if (bad) src.errors.push(`${label}:${i + 1}: "${bad}" in the heading of ${m[1]} is not a wasm value type.`);
      else add(src, m[1], sig(types, result === "()" ? null : result), i + 1);
    }
  });
  return src;
}

/** The harness's table (ABI_IMPORTS of tools/harness/abi.ts) as a source. */
export function importsFromTable(table: Record<string, string>, label: string): AbiSource {
  return { label, imports: new Map(Object.entries(table)), errors: [] };
}

/** Reads the three sources that are files: the spec, the runtime, the shim. */
export function readFileSources(): AbiSource[] {
  const read = (p: string) => readFileSync(join(ROOT, p), "utf8");
  return [
    importsFromAbiMd(read("shim/ABI.md"), "shim/ABI.md"),
    importsFromAssemblyScript(read("assembly/runtime/abi.ts"), "assembly/runtime/abi.ts"),
    readShimImports(),
  ];
}

/**
 * Every way the sources disagree, one sentence each: an import missing from some, a
 * signature that differs, and whatever a source could not read. Empty when they agree.
 */
export function compareAbiSources(sources: AbiSource[]): string[] {
  const out: string[] = sources.flatMap((s) => s.errors);
  for (const s of sources) if (s.imports.size === 0) out.push(`${s.label} lists no imports at all: the check could not read it.`);
  const names = [...new Set(sources.flatMap((s) => [...s.imports.keys()]))].sort();
  for (const name of names) {
    const has = sources.filter((s) => s.imports.has(name));
    const lacks = sources.filter((s) => !s.imports.has(name));
    const key = `${ABI_MODULE}.${name}`;
    if (lacks.length)
      out.push(`import ${key} is in ${has.map((s) => s.label).join(", ")} but missing from ${lacks.map((s) => s.label).join(", ")}.`);
    const sigs = new Set(has.map((s) => s.imports.get(name)));
    if (sigs.size > 1)
      out.push(`import ${key} has different signatures: ${has.map((s) => `${s.label} says ${s.imports.get(name)}`).join("; ")}.`);
  }
  return out;
}

// The errno values the imports return (ABI.md §2 and the extensions' table) are named in
// the spec, the runtime (assembly/runtime/abi.ts), the harness (tools/harness/errno.ts)
// and the shim (XEN_E* in shim/xen.h): Xen's xen/include/public/errno.h numbering.

/** errno name -> positive value, as one source defines them. */
export interface ErrnoSource {
  label: string;
  values: Map<string, number>;
}

const errnoSource = (label: string, text: string, re: RegExp): ErrnoSource => ({
  label,
  values: new Map([...stripComments(text).matchAll(re)].map((m) => [m[1], Number(m[2])])),
});

/** The rows `| -N | ENAME | ... |` of ABI.md's error tables. */
export const errnoFromAbiMd = (text: string, label: string) => {
  const src: ErrnoSource = { label, values: new Map() };
  for (const m of text.matchAll(/^\|\s*-(\d+)\s*\|\s*(E[A-Z0-9]+)\s*\|/gm)) src.values.set(m[2], Number(m[1]));
  return src;
};
/** `export const EFOO: i32 = N;` (the runtime) or `export const EFOO = N;` (the harness). */
export const errnoFromTs = (text: string, label: string) =>
  errnoSource(label, text, /export const (E[A-Z0-9]+)\s*(?::\s*i32\s*)?=\s*(\d+)\s*;/g);
/** `#define XEN_EFOO N` in shim/xen.h. */
export const errnoFromShimH = (text: string, label: string) => errnoSource(label, text, /^#define\s+XEN_(E[A-Z0-9]+)\s+(\d+)\b/gm);

/**
 * Where the errno sources disagree: every value the spec names must be defined, with the
 * same number, by each of `mustName` (the runtime and the harness return or name them all);
 * `mayName` (the shim, which returns only some) must agree on the ones it defines.
 */
export function compareErrno(spec: ErrnoSource, mustName: ErrnoSource[], mayName: ErrnoSource[]): string[] {
  const out: string[] = [];
  for (const s of [spec, ...mustName, ...mayName])
    if (s.values.size === 0) out.push(`${s.label} defines no errno values: the check could not read it.`);
  for (const [name, value] of spec.values) {
    for (const s of mustName)
      if (!s.values.has(name)) out.push(`errno ${name} (-${value}) is in ${spec.label} but not defined in ${s.label}.`);
  }
  const all = [spec, ...mustName, ...mayName];
  const names = [...new Set(all.flatMap((s) => [...s.values.keys()]))].sort();
  for (const name of names) {
    const has = all.filter((s) => s.values.has(name));
    if (new Set(has.map((s) => s.values.get(name))).size > 1)
      out.push(`errno ${name} has different values: ${has.map((s) => `${s.label} says ${s.values.get(name)}`).join("; ")}.`);
  }
  return out;
}

/** The four errno sources of the tree: spec, runtime, harness, shim. */
export function readErrnoSources() {
  const read = (p: string) => readFileSync(join(ROOT, p), "utf8");
  return {
    spec: errnoFromAbiMd(read("shim/ABI.md"), "shim/ABI.md"),
    runtime: errnoFromTs(read("assembly/runtime/abi.ts"), "assembly/runtime/abi.ts"),
    harness: errnoFromTs(read("tools/harness/errno.ts"), "tools/harness/errno.ts"),
    shim: errnoFromShimH(read("shim/xen.h"), "shim/xen.h"),
  };
}
