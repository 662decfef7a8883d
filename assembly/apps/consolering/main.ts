// consolering: the runtime's console ring writer (runtime/xen/console-ring.ts)
// against a console backend that stops reading (test/runtime/console-ring.test.ts).
//
//   stall <lines> <max backlog>   writes the lines (32 bytes each) to a stopped backend:
//                                 what does not fit is dropped and counted; drain fails after
//                                 200 ms; then the test's backend resumes (at data/resume),
//                                 the marker and a last line follow, and drain succeeds
import { boot, console, consoleRing, evtchn, gnttab, iopage, sched, time, xenbus, xenstore } from "../../runtime";
import { check, eq, result } from "../../runtime/testing";

const args = boot.args();
const arg = (i: i32, def: i32): i32 => (args.length > i ? I32.parseInt(args[i]) : def);

function stall(lines: i32, maxBacklog: i32): void {
  const xs = xenstore.open();
  const page = iopage.alloc();
  const g = gnttab.grant(0, page, false);
  const port = evtchn.allocUnbound(0);
  const fe = new xenbus.Frontend(xs, "console", "1").publish("ring-ref", g!.ref.toString()).publish("port", port.channel!.port.toString());
  const c = sched.waitFor(fe.connect(), time.NS_PER_S);
  check(c.ok, "connected" + (c.ok ? "" : ": " + c.error));
  const cons = new consoleRing.ConsoleRing(page, port.channel!);
  cons.maxBacklog = <u64>maxBacklog;
  for (let i = 0; i < lines; i++) cons.write("line " + i.toString().padStart(4, "0") + " of a stopped console...\n");
  console.log("written " + cons.written.toString() + ", dropped " + cons.dropped.toString());
  const d = sched.wait(cons.drain(200 * time.NS_PER_MS));
  console.log("drain: " + (d.ok ? "ok" : d.error));
  cons.write("dropped too: nothing has room yet\n");
  // The test's backend starts reading again when this key appears.
  sched.wait(xs.write("data/resume", "1"));
  const d2 = sched.wait(cons.drain(5 * time.NS_PER_S));
  console.log("drain: " + (d2.ok ? "ok" : d2.error));
  cons.write("after the marker\n");
  const d3 = sched.wait(cons.drain(5 * time.NS_PER_S));
  console.log("drain: " + (d3.ok ? "ok" : d3.error) + ", dropped in all " + cons.droppedTotal.toString());
  const cl = sched.waitFor(fe.close(), time.NS_PER_S);
  eq(cl.ok ? "ok" : cl.error, "ok", "closed");
}

const which = args.length > 0 ? args[0] : "";
if (which == "stall") stall(arg(1, 100), arg(2, 1024));
else console.log("consolering: unknown case \"" + which + "\"");
result();
