// Ending the domain, and AssemblyScript's abort hook (ABI.md §3.5, §4).
import * as abi from "./abi";
import { write, writeBytes } from "./console";
import "./oom"; // always compiled with abort: the allocator's out-of-memory report (tools/oom)

/** Powers the domain off: the normal end of a unikernel. */
export function poweroff(): void {
  abi.shutdown(abi.SHUTDOWN_POWEROFF);
  unreachable();
}

/** Asks the toolstack to restart the domain. */
export function reboot(): void {
  abi.shutdown(abi.SHUTDOWN_REBOOT);
  unreachable();
}

/** Prints `panic: <message>` and shuts the domain down as crashed (no stack: use a trap for that). */
export function panic(message: string): void {
  write("panic: ");
  write(message);
  write("\n");
  abi.shutdown(abi.SHUTDOWN_CRASH);
  unreachable();
}

/** Exit code 0 powers off; any other code is reported and crashes the domain. */
export function exit(code: i32): void {
  if (code == 0) poweroff();
  panic("exit with code " + code.toString());
}

/**
 * AssemblyScript's abort (assertions, `throw`, bounds errors), wired in with
 * `--use abort=assembly/runtime/system/morganaAbort`. Prints the message without
 * allocating, then traps so the host prints the symbolised stack.
 */
export function morganaAbort(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  write("abort: ");
  write(message ? message : "(no message)");
  if (fileName) {
    write(" at ");
    write(fileName);
    write(":");
    writeU32(line);
    write(":");
    writeU32(column);
  }
  write("\n");
  unreachable();
}

// Decimal without allocating (abort may run with a broken heap).
function writeU32(v: u32): void {
  const buf = memory.data(10);
  let i: i32 = 10;
  do {
    store<u8>(buf + <usize>--i, 48 + v % 10);
    v /= 10;
  } while (v != 0);
  writeBytes(buf + <usize>i, 10 - i);
}
