// The cooperative scheduler (runtime/sched.ts): 10,000 sleepers waking in
// deadline order, join / choose / timeout / cancel, yield.
import { sched, time, Task, Future } from "../../runtime";
import { State } from "../../runtime/sched";
import { check, eq } from "../../runtime/testing";

const woke = new Array<i64>();
let late: i32 = 0;

class Sleeper extends Task {
  started: bool = false;
  constructor(public deadline: i64) {
    super();
  }
  step(): void {
    if (!this.started) {
      this.started = true;
      this.await(sched.sleepUntil(this.deadline));
      return;
    }
    if (time.monotonic() < this.deadline) late++;
    woke.push(this.deadline);
    this.finish();
  }
}

export function sleepers(): void {
  const N = 10_000;
  const t0 = time.monotonic() + 5 * time.NS_PER_MS;
  const all = new Array<Future>();
  // A permutation of 0..N-1 (7919 is prime to N): deadlines 5 µs apart over 50 ms, spawned out of order.
  for (let i = 0; i < N; i++) all.push(sched.spawn(new Sleeper(t0 + <i64>((i * 7919) % N) * 5 * time.NS_PER_US)));
  const j = sched.wait(sched.join(all));
  check(j.ok, "all 10,000 sleepers finished");
  check(woke.length == N, "each woke exactly once (" + woke.length.toString() + ")");
  let ordered = true;
  for (let i = 1; i < woke.length; i++) if (woke[i] < woke[i - 1]) ordered = false;
  check(ordered, "they woke in deadline order");
  check(late == 0, "none woke before its deadline");
  check(sched.timers() == 0, "no timer is left in the heap");
}

class Counter extends Task {
  n: i32 = 0;
  constructor(public limit: i32, public log: Array<string>, public name: string) {
    super();
  }
  step(): void {
    if (this.n == this.limit) {
      this.finish(this.n);
      return;
    }
    this.log.push(this.name + this.n.toString());
    this.n++;
    this.yieldNow();
  }
}

class Forever extends Task {
  steps: i32 = 0;
  step(): void {
    this.steps++;
    this.await(sched.sleep(time.NS_PER_S * 3600));
  }
}

export function combinators(): void {
  // join: resolves after the slowest.
  const t0 = time.monotonic();
  const j = sched.wait(sched.join([sched.sleep(2 * time.NS_PER_MS), sched.sleep(10 * time.NS_PER_MS), sched.sleep(5 * time.NS_PER_MS)]));
  check(j.ok && time.monotonic() - t0 >= 10 * time.NS_PER_MS, "join resolves when the slowest of three sleeps does");

  // choose: the first wins, the others are cancelled.
  const slow = sched.sleep(time.NS_PER_S);
  const fast = sched.sleep(3 * time.NS_PER_MS);
  const c = sched.wait(sched.choose([slow, fast]));
  check(c.ok && c.winner == 1, "choose picks the 3 ms sleep over the 1 s one");
  check(slow.state == State.Cancelled, "choose cancels the loser");
  check(sched.timers() == 0, "the cancelled sleep left the timer heap");

  // timeout: rejects and cancels what it guards.
  const guarded = sched.sleep(time.NS_PER_S);
  const t = sched.wait(sched.timeout(guarded, 10 * time.NS_PER_MS));
  eq(t.error, "timed out after 10 ms", "timeout rejects with its duration");
  check(guarded.state == State.Cancelled, "timeout cancels the guarded future");
  const quick = sched.wait(sched.timeout(sched.sleep(time.NS_PER_MS), time.NS_PER_S));
  check(quick.ok && sched.timers() == 0, "a future that beats its timeout resolves it, and the timer is gone");

  // cancel: a task blocked on a sleep stops, and the sleep is cancelled with it.
  const f = sched.spawn(new Forever());
  sched.wait(sched.sleep(time.NS_PER_MS)); // let it start
  f.cancel();
  check(f.state == State.Cancelled && f.steps == 1, "a cancelled task does not run again");
  check(sched.timers() == 0, "cancelling the task cancelled its sleep");

  // join rejects when one part fails.
  const bad = new Future();
  const jj = sched.join([sched.sleep(time.NS_PER_MS), bad]);
  bad.reject("broken on purpose");
  sched.wait(jj);
  eq(jj.error, "broken on purpose", "join rejects with the first failure");

  // yieldNow interleaves ready tasks round-robin.
  const log = new Array<string>();
  sched.wait(sched.join([sched.spawn(new Counter(3, log, "a")), sched.spawn(new Counter(3, log, "b"))]));
  eq(log.join(","), "a0,b0,a1,b1,a2,b2", "yieldNow interleaves two tasks");
  sched.wait(sched.sleep(time.NS_PER_MS)); // drain the leftover timer from the join above
}
