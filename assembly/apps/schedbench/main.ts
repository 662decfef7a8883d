// schedbench: the runtime's costs for `npm run bench` (tools/bench/runtime.ts),
// in the harness and under Xen. Prints "bench: <name> <value> <unit>" lines.
//
// Command line: jobs, run in order:
//   switch:N   two tasks yield to each other N times each: ns per task switch
//   evtchn:N   N event-channel round trips over a loopback pair, task to task
import { boot, console, evtchn, sched, time, Task } from "../../runtime";
import * as abi from "../../runtime/abi";
import { Channel } from "../../runtime/xen/evtchn";

function report(name: string, value: f64, unit: string): void {
  console.log("bench: " + name + " " + value.toString() + " " + unit);
}

class Yielder extends Task {
  n: i32 = 0;
  constructor(public limit: i32) {
    super();
  }
  step(): void {
    if (++this.n > this.limit) this.finish();
    else this.yieldNow();
  }
}

function switches(n: i32): void {
  const steps0 = sched.steps;
  const t0 = time.monotonic();
  sched.wait(sched.join([sched.spawn(new Yielder(n)), sched.spawn(new Yielder(n))]));
  const dt = time.monotonic() - t0;
  report("task_switch_ns", <f64>dt / <f64>(sched.steps - steps0), "ns");
}

// Ping notifies through `out` and waits for the answer on `inp`; Pong echoes.
class Ping extends Task {
  n: i32 = 0;
  constructor(public out: Channel, public inp: Channel, public limit: i32) {
    super();
  }
  step(): void {
    if (this.n++ == this.limit) {
      this.finish();
      return;
    }
    this.out.notify();
    this.await(this.inp.next());
  }
}

class Pong extends Task {
  constructor(public out: Channel, public inp: Channel) {
    super();
  }
  step(): void {
    if (this.awaited) this.out.notify();
    this.await(this.inp.next());
  }
}

function roundTrips(n: i32): void {
  const a = evtchn.allocUnbound(abi.DOMID_SELF).channel!;
  const b = evtchn.bindInterdomain(abi.DOMID_SELF, a.port).channel!;
  // Notifying b raises a, and the other way round.
  const pong = sched.spawn(new Pong(a, a));
  const t0 = time.monotonic();
  const ping = sched.wait(sched.spawn(new Ping(b, b, n)));
  const dt = time.monotonic() - t0;
  pong.cancel();
  a.close();
  b.close();
  if (!ping.ok) console.log("bench: evtchn failed: " + ping.error);
  else report("evtchn_round_trip_ns", <f64>dt / <f64>n, "ns");
}

const jobs = boot.args();
for (let i = 0; i < jobs.length; i++) {
  const job = jobs[i];
  const colon = job.indexOf(":");
  const n = colon < 0 ? 10000 : I32.parseInt(job.substring(colon + 1));
  const name = colon < 0 ? job : job.substring(0, colon);
  if (name == "switch") switches(n);
  else if (name == "evtchn") roundTrips(n);
  else console.log("bench: unknown job " + job);
}
console.log("bench: done");
