// xbtest: the deadlines and bounds of the xenstore client and the xenbus
// handshake, against a harness xenstored or vbd backend that the test makes
// misbehave (never answer, answer late, flood a watch). One case per run; every
// wait is the runtime's own (no outer timeout here), so a missing deadline hangs.
//
//   open <connect ms> <close ms> <unmap ms> [xs ms]
//                      block.open() with these deadlines (0: the default), then
//                      close(): each outcome
//   xs <ms> <key>...   reads each key in turn, each request with an <ms> deadline:
//                      each outcome, then the client's counters
//   flood              a watch on data/flood that nobody reads while the test fires
//                      events at it: memory grown, events pending, and the watch
//                      still works afterwards
//
// Prints its findings, then exactly one result line (TEST PASS or FAIL: ...).
import { block, boot, console, sched, time, xenstore } from "../../runtime";
import { check, eq, result } from "../../runtime/testing";

const args = boot.args();
const which = args.length > 0 ? args[0] : "";
const ms = (i: i32): i64 => (args.length > i ? <i64>U64.parseInt(args[i]) * time.NS_PER_MS : 0);

function outcome(f: sched.Future): string {
  return f.ok ? "ok" : f.error;
}

function open(): void {
  const xs = xenstore.open();
  if (ms(4) > 0) xs.requestTimeoutNs = ms(4);
  const opts = new block.OpenOptions();
  if (ms(1) > 0) opts.connectTimeoutNs = ms(1);
  if (ms(2) > 0) opts.closeTimeoutNs = ms(2);
  if (ms(3) > 0) opts.unmapTimeoutNs = ms(3);
  const o = sched.wait(block.open("", opts));
  console.log("open: " + outcome(o));
  if (o.ok) console.log("close: " + outcome(sched.wait(o.device!.close())));
  check(true, "ran");
}

function reads(): void {
  const xs = xenstore.open();
  xs.requestTimeoutNs = ms(1);
  for (let i = 2; i < args.length; i++) {
    const r = sched.wait(xs.read(args[i]));
    console.log("read " + args[i] + ": " + (r.ok ? "\"" + r.text() + "\"" : r.error));
  }
  console.log(
    "timeouts=" + xs.timeouts.toString() + " late=" + xs.lateReplies.toString() + " errors=" + xs.errors.toString() +
      " in-flight=" + xs.inFlight().toString() + (xs.dead ? " dead: " + xs.lastError : ""),
  );
  check(true, "ran");
}

function flood(): void {
  const xs = xenstore.open();
  const w = xs.watch("data/flood", "flood");
  const reg = sched.wait(w.registered!);
  if (!reg.ok) return check(false, reg.error);
  eq(sched.wait(w.next()).path, "data/flood", "the initial event");
  const before = memory.size();
  const events = xs.watchEvents;
  // The test floods the watch when it sees this write; the ack comes after the flood.
  const go = sched.wait(xs.write("data/flood-go", "1"));
  if (!go.ok) return check(false, go.error);
  console.log(
    "events: " + (xs.watchEvents - events).toString() + " pending: " + w.queue.length.toString() + " coalesced: " +
      w.coalesced.toString() + " overflows: " + w.overflows.toString() + " memory grew: " + (memory.size() - before).toString() + " pages",
  );
  // What is pending comes out at once, then a new change fires the watch again.
  const pending = new Array<string>();
  while (w.queue.length > 0) pending.push(sched.wait(w.next()).path);
  console.log("pending: " + pending.join(","));
  const next = w.next();
  const wr = sched.wait(xs.write("data/flood", "after"));
  if (!wr.ok) return check(false, wr.error);
  eq(sched.wait(next).path, "data/flood", "the watch fires after the flood");
}

if (which == "open") open();
else if (which == "xs") reads();
else if (which == "flood") flood();
else console.log("xbtest: unknown case \"" + which + "\"");
result();
