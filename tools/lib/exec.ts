// Runs the build's external tools (gcc, clang, wasm2c, ld, npm, tar, ...) through zx's `$`:
// zx quotes every argument (no shell string is ever built by hand), the output is captured
// quietly, and a failure becomes one error that names the command and shows its stderr's tail.
import { $ } from "zx/core";
import { ROOT } from "./paths.ts";

/** How much of a failed command's stderr (or stdout) an error shows: compilers can print megabytes. */
const TAIL = 4000;

export interface ToolOptions {
  /** Working directory (default: the project root). */
  cwd?: string;
  /** Characters of output a failure shows, from the end (default 4000; asc's first diagnostic matters most: Infinity). */
  tail?: number;
}

/** A failed external command: `what` failed, with the command line and the end of its output. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

/** `cmd args...` as a user could paste it into a shell. */
export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

interface Finished {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function failure(cmd: string, args: readonly string[], what: string, r: Finished, tail = TAIL): ToolError {
  // bash answers 127 for a command that does not exist
  if (r.exitCode === 127 && /command not found|No such file or directory/.test(r.stderr))
    return new ToolError(`${cmd} not found: it is needed for ${what} (run tools/setup)`, r.exitCode);
  const how = r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`;
  const all = r.stderr.trim() || r.stdout.trim();
  const out = all.length > tail ? `...${all.slice(-tail)}` : all;
  return new ToolError(`${what} failed (${how}): ${commandLine(cmd, args)}${out ? `\n${out}` : ""}`, r.exitCode);
}

/** Runs `cmd args...`; resolves to its stdout, or rejects with a ToolError naming `what` was being done. */
export async function tool(cmd: string, args: readonly string[], what: string, opts: ToolOptions = {}): Promise<string> {
  const r = await $({ cwd: opts.cwd ?? ROOT, quiet: true, nothrow: true })`${cmd} ${args}`;
  if (r.exitCode !== 0) throw failure(cmd, args, what, r, opts.tail);
  return r.stdout;
}

/** The synchronous form of `tool`, for callers that cannot wait (bench's helpers). */
export function toolSync(cmd: string, args: readonly string[], what: string, opts: ToolOptions = {}): string {
  const r = $.sync({ cwd: opts.cwd ?? ROOT, quiet: true, nothrow: true })`${cmd} ${args}`;
  if (r.exitCode !== 0) throw failure(cmd, args, what, r, opts.tail);
  return r.stdout;
}

const versions = new Map<string, Promise<string>>();

/** The first line of `cmd --version`, once per process: part of every cache key the tool's output goes into. */
export function toolVersion(cmd: string): Promise<string> {
  let v = versions.get(cmd);
  if (!v) {
    v = tool(cmd, ["--version"], `asking ${cmd} for its version`).then((out) => out.split("\n")[0]);
    versions.set(cmd, v);
  }
  return v;
}
