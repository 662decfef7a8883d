// Cooperative threads in the spirit of Lwt (OCaml's ocsigen/lwt, the promises of
// its src/core/lwt.ml; Mirage paper §3.2), without stack switching:
// AssemblyScript has no closures (assemblyscript.org, "Status and roadmap"), and
// coroutines made with Binaryen's Asyncify pass keep a suspended task's locals in
// an unwind buffer that AssemblyScript's garbage collector does not scan, so the
// objects only they reference could be freed while the task sleeps. So a
// suspended thread is an ordinary heap object, reachable from the scheduler,
// that remembers where it is in its own fields:
//
//   - a Future is a value that settles once: resolved, rejected (with a message)
//     or cancelled. Other futures wait on it; settling wakes them.
//   - a Task is a Future with a step() method, the continuation. step() runs
//     when the task starts and each time the future it awaits settles; it does a
//     bit of work, then awaits another future, or finishes.
//   - sleep, join, choose, timeout and event-channel waits are futures too.
//   - run(f) is the event loop: each turn it dispatches pending event channels,
//     then fires due timers from a binary heap, then steps the ready tasks, and
//     when idle blocks the domain until the next deadline or event. Events come
//     first, so an event that arrived before a deadline was noticed is never
//     skipped. It runs only at the top level (never inside step).
//
//   class Blink extends Task {
//     n: i32 = 0;
//     step(): void {
//       if (this.n == 3) { this.finish(); return; }   // resolves the task
//       console.log("blink " + this.n.toString());
//       this.n++;
//       this.await(sched.sleep(100 * time.NS_PER_MS)); // step() again in 100 ms
//     }
//   }
//   const t = sched.spawn(new Blink());
//   sched.run(sched.timeout(t, time.NS_PER_S));        // top level: loop until settled
//
// Inside step(), `this.awaited` is the future that woke the task: check its
// state (ok / failed / cancelled) and read its result from its own fields.
import { block, clock_monotonic, NO_DEADLINE } from "./abi";

export enum State {
  Pending = 0,
  Resolved = 1,
  Rejected = 2,
  Cancelled = 3,
}

/** A value that settles once; waiters are other futures (tasks, combinators). */
export class Future {
  state: State = State.Pending;
  /** Why it was rejected or cancelled. */
  error: string = "";
  /** A small integer result (a count, a port); richer results live in subclasses. */
  value: i64 = 0;
  private waiters: Array<Future> | null = null;

  get pending(): bool {
    return this.state == State.Pending;
  }
  get ok(): bool {
    return this.state == State.Resolved;
  }
  get failed(): bool {
    return this.state == State.Rejected || this.state == State.Cancelled;
  }

  resolve(value: i64 = 0): void {
    if (this.state != State.Pending) return;
    this.value = value;
    this.settle(State.Resolved, "");
  }

  reject(error: string): void {
    if (this.state != State.Pending) return;
    this.settle(State.Rejected, error);
  }

  /** Cancels a pending future (and what it waits on); its waiters wake and see Cancelled. */
  cancel(reason: string = "cancelled"): void {
    if (this.state != State.Pending) return;
    // Settle first: what onCancel() cancels in turn may wake this future, which must ignore it.
    this.settle(State.Cancelled, reason);
    this.onCancel();
  }

  /** Makes `w` wake when this settles (at once, through the run queue, if it already has). */
  addWaiter(w: Future): void {
    if (this.state != State.Pending) {
      w.wake(this);
      return;
    }
    let ws = this.waiters;
    if (!ws) this.waiters = ws = new Array<Future>();
    ws.push(w);
  }

  removeWaiter(w: Future): void {
    const ws = this.waiters;
    if (!ws) return;
    const i = ws.indexOf(w);
    if (i >= 0) ws.splice(i, 1);
  }

  /** Called when a future this one waits on settles. */
  wake(from: Future): void {}

  /** Subclasses release what they hold (a timer, an event wait) when cancelled. */
  protected onCancel(): void {}

  protected settle(state: State, error: string): void {
    this.state = state;
    this.error = error;
    const ws = this.waiters;
    this.waiters = null;
    if (ws) for (let i = 0; i < ws.length; i++) unchecked(ws[i]).wake(this);
  }
}

/** A cooperative thread: step() is its continuation (see the example above). */
export abstract class Task extends Future {
  /** The future whose settling woke this task (null on the first step). */
  awaited: Future | null = null;
  private waiting: bool = false;
  queued: bool = false;

  /** Does some work, then calls await(), yieldNow(), finish() or fail(). */
  abstract step(): void;

  /** Suspends until f settles; step() then runs again with awaited == f. */
  await(f: Future): void {
    this.waiting = true;
    this.awaited = f;
    f.addWaiter(this);
  }

  /** Lets the other ready tasks run, then steps again. */
  yieldNow(): void {
    this.waiting = true;
    this.awaited = null;
    enqueue(this);
  }

  finish(value: i64 = 0): void {
    this.resolve(value);
  }

  fail(error: string): void {
    this.reject(error);
  }

  wake(from: Future): void {
    if (this.state == State.Pending && this.awaited === from) enqueue(this);
  }

  protected onCancel(): void {
    const a = this.awaited;
    this.awaited = null;
    if (a) {
      a.removeWaiter(this);
      a.cancel(); // cancellation propagates to what the task was waiting for, as in Lwt
    }
  }

  /** Makes a settled task pending again, to run from its first step (a retried transaction body). */
  reset(): void {
    this.state = State.Pending;
    this.error = "";
    this.awaited = null;
    this.waiting = false;
  }

  /** Runs one step; called by the scheduler only. */
  runStep(): void {
    this.queued = false;
    if (this.state != State.Pending) return;
    this.waiting = false;
    this.step();
    if (this.state == State.Pending && !this.waiting)
      throw new Error("Task.step() returned without await(), yieldNow(), finish() or fail(): the task would never run again");
  }
}

/** Resolves when the deadline (monotonic ns) passes. */
export class Sleep extends Future {
  heapIndex: i32 = -1;
  seq: u64 = 0;
  constructor(public deadline: i64) {
    super();
  }
  protected onCancel(): void {
    heapRemove(this);
  }
}

/** Resolves when every future has resolved; rejects at the first failure. */
export class Join extends Future {
  private left: i32;
  constructor(public futures: Array<Future>) {
    super();
    this.left = futures.length;
    if (this.left == 0) this.resolve();
    for (let i = 0; i < futures.length; i++) futures[i].addWaiter(this);
  }
  wake(from: Future): void {
    if (!this.pending) return;
    if (from.failed) this.reject(from.error);
    else if (--this.left == 0) this.resolve();
  }
  protected onCancel(): void {
    for (let i = 0; i < this.futures.length; i++) this.futures[i].cancel();
  }
}

/** Resolves when every future has settled, whatever the outcome (each keeps its own). */
export class AllSettled extends Future {
  private left: i32;
  constructor(fs: Array<Future>) {
    super();
    this.left = fs.length;
    if (this.left == 0) this.resolve();
    for (let i = 0; i < fs.length; i++) fs[i].addWaiter(this);
  }
  wake(from: Future): void {
    if (--this.left == 0) this.resolve();
  }
}

/** Settles like the first future to settle (its index in `value`); cancels the others. */
export class Choose extends Future {
  winner: i32 = -1;
  constructor(public futures: Array<Future>) {
    super();
    for (let i = 0; i < futures.length; i++) futures[i].addWaiter(this);
  }
  wake(from: Future): void {
    if (!this.pending) return;
    this.winner = this.futures.indexOf(from);
    if (from.ok) this.resolve(this.winner);
    else this.reject(from.error);
    for (let i = 0; i < this.futures.length; i++) if (i != this.winner) this.futures[i].cancel();
  }
  protected onCancel(): void {
    for (let i = 0; i < this.futures.length; i++) this.futures[i].cancel();
  }
}

/** Settles like f, or rejects with "timed out" (cancelling f) when ns pass first. */
export class Timeout extends Future {
  private timer: Sleep;
  constructor(public inner: Future, public ns: i64) {
    super();
    this.timer = sleep(ns);
    inner.addWaiter(this);
    this.timer.addWaiter(this);
  }
  wake(from: Future): void {
    if (!this.pending) return;
    if (from === this.timer) {
      if (this.timer.state != State.Resolved) return;
      const why = "timed out after " + (this.ns / 1_000_000).toString() + " ms";
      this.reject(why);
      this.inner.cancel(why);
      return;
    }
    if (from.ok) this.resolve(from.value);
    else this.reject(from.error);
    this.timer.cancel();
  }
  protected onCancel(): void {
    this.timer.cancel();
    this.inner.cancel();
  }
}

// ---- the scheduler ----

let runq = new Array<Task>();
let nextq = new Array<Task>();
const heap = new Array<Sleep>();
let seqCounter: u64 = 0;
let running: bool = false;
let poller: (() => void) | null = null;
/** Task steps run since boot (benchmarks). */
export let steps: u64 = 0;

/** Starts a task: its first step runs from the event loop. */
export function spawn<T extends Task>(t: T): T {
  enqueue(t);
  return t;
}

export function sleep(ns: i64): Sleep {
  return sleepUntil(clock_monotonic() + ns);
}

export function sleepUntil(deadline: i64): Sleep {
  const s = new Sleep(deadline);
  s.seq = seqCounter++; // equal deadlines wake in the order they were set
  heapPush(s);
  return s;
}

export function join(fs: Array<Future>): Join {
  return new Join(fs);
}

export function choose(fs: Array<Future>): Choose {
  return new Choose(fs);
}

export function timeout(f: Future, ns: i64): Timeout {
  return new Timeout(f, ns);
}

/** Installs the event-channel dispatcher (xen/evtchn.ts) the loop calls when events are pending. */
export function setPoller(fn: () => void): void {
  poller = fn;
}

/**
 * The event loop: runs until `until` settles (or, without it, until no task is
 * ready and no timer is set). Top level only: a task awaits, it never runs the loop.
 */
export function run(until: Future | null = null): void {
  if (running) throw new Error("sched.run() called inside a task: use this.await(f) in step()");
  running = true;
  for (;;) {
    // Events before anything else, on every turn: one pending when run() was called, or
    // when a deadline is found passed, is dispatched before the loop can return or a timer
    // fires. Firing timers first let a late-looked-at deadline end the loop (or a timeout
    // win) with the event still pending and never dispatched: a slow (busy) host did that.
    pollEvents();
    if (until ? !until.pending : runq.length == 0 && heap.length == 0) break;
    fireTimers();
    if (runq.length > 0) {
      runBatch();
      continue;
    }
    if (until ? !until.pending : heap.length == 0) break;
    // Idle: sleep until the next deadline or an event; the next turn polls whatever block() saw.
    block(heap.length > 0 ? unchecked(heap[0]).deadline : NO_DEADLINE);
  }
  running = false;
}

/** Runs the loop until f settles and returns f (top level only). */
export function wait<T extends Future>(f: T): T {
  run(f);
  return f;
}

/** Like wait(), but gives up after ns: f is then cancelled with "timed out after N ms". */
export function waitFor<T extends Future>(f: T, ns: i64): T {
  run(timeout(f, ns));
  return f;
}

function pollEvents(): void {
  const p = poller;
  if (p) p();
}

function enqueue(t: Task): void {
  if (t.queued) return;
  t.queued = true;
  runq.push(t);
}

function runBatch(): void {
  // Tasks made ready while this batch runs go in the next one: no task can starve the loop.
  const batch = runq;
  runq = nextq;
  for (let i = 0; i < batch.length; i++) {
    steps++;
    unchecked(batch[i]).runStep();
  }
  batch.length = 0;
  nextq = batch;
}

function fireTimers(): void {
  if (heap.length == 0) return;
  const now = clock_monotonic();
  while (heap.length > 0 && unchecked(heap[0]).deadline <= now) {
    const s = heapPop();
    s.resolve();
  }
}

/** Timers set and not yet fired (tests). */
export function timers(): i32 {
  return heap.length;
}

// ---- a binary min-heap of sleeps, by (deadline, seq) ----

function before(a: Sleep, b: Sleep): bool {
  return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
}

function place(s: Sleep, i: i32): void {
  unchecked((heap[i] = s));
  s.heapIndex = i;
}

function siftUp(i: i32): void {
  const s = unchecked(heap[i]);
  while (i > 0) {
    const p = (i - 1) >> 1;
    const ps = unchecked(heap[p]);
    if (!before(s, ps)) break;
    place(ps, i);
    i = p;
  }
  place(s, i);
}

function siftDown(i: i32): void {
  const n = heap.length;
  const s = unchecked(heap[i]);
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(unchecked(heap[c + 1]), unchecked(heap[c]))) c++;
    const cs = unchecked(heap[c]);
    if (!before(cs, s)) break;
    place(cs, i);
    i = c;
  }
  place(s, i);
}

function heapPush(s: Sleep): void {
  heap.push(s);
  siftUp(heap.length - 1);
}

function heapPop(): Sleep {
  const top = unchecked(heap[0]);
  const last = heap.pop();
  if (heap.length > 0) {
    place(last, 0);
    siftDown(0);
  }
  top.heapIndex = -1;
  return top;
}

function heapRemove(s: Sleep): void {
  const i = s.heapIndex;
  if (i < 0) return;
  const last = heap.pop();
  s.heapIndex = -1;
  if (i < heap.length) {
    place(last, i);
    siftDown(i);
    siftUp(last.heapIndex);
  }
}
