// crash: traps on purpose, to show (and test) the trap report: the reason, a
// symbolised wasm stack, and a domain shut down as crashed.
//
// The command line picks the trap: oob (load far outside linear memory), div
// (integer divide by zero), abort (an AssemblyScript error, i.e. abort()),
// stack (unbounded recursion), or anything else: unreachable.
import { console, boot } from "../../runtime";

// Recursion keeps descend out of the optimiser's inliner, so the report shows a
// real stack: descend x4 <- ~start (trapHere itself is inlined into descend).
function descend(depth: i32, kind: string): i32 {
  if (depth > 0) return descend(depth - 1, kind) + 1;
  return trapHere(kind);
}

function trapHere(kind: string): i32 {
  if (kind == "oob") return <i32>load<u32>(0xc000_0000); // 3 GiB: far beyond memory
  if (kind == "div") return 1 / (kind.length - 3);
  if (kind == "abort") throw new Error("thrown on purpose");
  if (kind == "stack") return recurseForever(1);
  unreachable();
  return 0;
}

function recurseForever(n: i32): i32 {
  return recurseForever(n + 1) + n;
}

const args = boot.args();
const kind = args.length > 0 ? args[0] : "unreachable";
console.log("crash: about to trap (" + kind + ")");
console.log(descend(3, kind).toString());
console.log("crash: still alive, which is a bug");
