// In-guest test verdicts, XTF style: each check prints "ok N ..." or "not ok N ...",
// and a test ends with exactly one result line, TEST PASS or "FAIL: <n> of <m>
// checks failed", which the harness tests and the test-bed runner read.
import * as console from "./console";

let failures = 0;
let n = 0;

export function check(ok: bool, what: string): void {
  n++;
  if (ok) console.log("ok " + n.toString() + " " + what);
  else {
    failures++;
    console.log("not ok " + n.toString() + " " + what);
  }
}

/** Checks that got == want, printing both when they differ. */
export function eq(got: string, want: string, what: string): void {
  check(got == want, got == want ? what : what + ": got \"" + got + "\", want \"" + want + "\"");
}

export function result(): void {
  if (n == 0) console.log("FAIL: no checks ran");
  else console.log(failures == 0 ? "TEST PASS" : "FAIL: " + failures.toString() + " of " + n.toString() + " checks failed");
}
