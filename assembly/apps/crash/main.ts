// crash: traps on purpose, to show (and test) the trap report: the reason, a
// symbolised wasm stack, and a domain shut down as crashed.
import { console, boot } from "../../runtime";


function readFar(addr: usize): u32 {
  // Linear memory is far smaller than 3 GiB: this load is out of bounds.
  return load<u32>(addr);
}

function divide(a: i32, b: i32): i32 {
  return a / b;
}

function crashNow(kind: string): void {
  console.log("crash: about to trap (" + kind + ")");
  if (kind == "oob") console.log(readFar(0xc000_0000).toString());
  else if (kind == "div") console.log(divide(1, boot.args().length - boot.args().length).toString());
  else if (kind == "abort") assert(false, "assertion failed on purpose");
  else unreachable();
}

const args = boot.args();
crashNow(args.length > 0 ? args[0] : "unreachable");
console.log("crash: still alive, which is a bug");
