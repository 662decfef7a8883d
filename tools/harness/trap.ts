// Turning a V8 wasm trap into the report of shim/ABI.md §4, so the harness and
// the shim print the same thing.

/** V8's trap messages → the ABI's trap reasons. */
const REASONS: [RegExp, string][] = [
  [/^unreachable/, "unreachable executed"],
  [/memory access out of bounds/, "out of bounds memory access"],
  [/divide by zero|remainder by zero/, "integer divide by zero"],
  [/divide result unrepresentable|integer overflow/, "integer overflow"],
  [/float unrepresentable|invalid conversion/, "invalid conversion to integer"],
  [
    /function signature mismatch|null function|table index is out of bounds|invalid index into function table/,
    "indirect call type mismatch",
  ],
  [/Maximum call stack size exceeded/, "call stack exhausted"],
];

/** Frames printed at most (ABI.md §4 allows truncation after 32). */
export const MAX_FRAMES = 32;

export interface Trap {
  reason: string;
  /** Function names, innermost first. */
  frames: string[];
  truncated: boolean;
}

/** Whether `e` is a wasm trap (as opposed to a bug in the harness). */
export function asTrap(e: unknown): Trap | null {
  if (!(e instanceof Error)) return null;
  const isWasm = e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && /call stack/.test(e.message));
  if (!isWasm) return null;
  const hit = REASONS.find(([rx]) => rx.test(e.message));
  const reason = hit ? hit[1] : `unknown trap (${e.message})`;
  const all = wasmFrames(e.stack ?? "");
  return { reason, frames: all.slice(0, MAX_FRAMES), truncated: all.length > MAX_FRAMES };
}

// V8 writes a wasm frame as "    at <name> (wasm://wasm/<hash>:wasm-function[<n>]:0x<off>)",
// or without a name as "    at wasm://wasm/<hash>:wasm-function[<n>]:0x<off>".
const FRAME = /^\s+at (?:(.*) \()?wasm:\/\/wasm\/[^:]*:(wasm-function\[\d+\]):0x[0-9a-f]+\)?$/;

export function wasmFrames(stack: string): string[] {
  const out: string[] = [];
  for (const line of stack.split("\n")) {
    const m = FRAME.exec(line);
    if (m) out.push(m[1] ?? m[2]);
  }
  return out;
}

/** The report text, exactly as ABI.md §4 specifies. */
export function formatTrap(t: Trap): string {
  const lines = [`TRAP: ${t.reason}`, ...t.frames.map((f) => `  at ${f}`)];
  if (t.truncated) lines.push("  ...");
  return lines.join("\n") + "\n";
}
