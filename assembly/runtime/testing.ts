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

/** Deterministic pseudo-random numbers (xorshift32) for tests and benchmarks: same seed, same run. */
export class Xorshift32 {
  private s: u32;
  constructor(seed: u32) {
    this.s = seed | 1; // 0 is xorshift's one fixed point
  }
  /** A generator whose state is exactly seed (0, xorshift's fixed point, becomes 1). */
  static exact(seed: u32): Xorshift32 {
    const r = new Xorshift32(1);
    r.s = seed == 0 ? 1 : seed;
    return r;
  }
  next(): u32 {
    let x = this.s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    this.s = x;
    return x;
  }
  /** A value in [0, n), from 64 random bits. */
  below(n: u64): u64 {
    return ((<u64>this.next() << 32) | <u64>this.next()) % n;
  }
}
