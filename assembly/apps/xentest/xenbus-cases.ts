// The xenbus frontend handshake (runtime/xen/xenbus.ts) with the harness's
// console backend, and a console ring written through it with flow control.
import { console, consoleRing, evtchn, gnttab, iopage, sched, time, xenbus, xenstore } from "../../runtime";
import * as abi from "../../runtime/abi";
import { check, eq } from "../../runtime/testing";

export function xenbusMissing(): void {
  const fe = new xenbus.Frontend(xenstore.open(), "vbd", "51712");
  const c = sched.waitFor(fe.connect(), time.NS_PER_S);
  eq(c.error, "device/vbd/51712: no backend — is there a disk line in the xl config?", "a missing backend is a clear error");
}

export function pvConsole(lines: i32): void {
  const xs = xenstore.open();
  const page = iopage.alloc();
  const g = gnttab.grant(0, page, false);
  const port = evtchn.allocUnbound(0);
  check(g != null && port.channel != null, "granted the ring page and allocated a port");
  const fe = new xenbus.Frontend(xs, "console", "1")
    .feature("protocol", "none")
    .feature("feature-missing", "the default")
    .publish("ring-ref", g!.ref.toString())
    .publish("port", port.channel!.port.toString());
  const c = sched.waitFor(fe.connect(), time.NS_PER_S);
  check(c.ok, "connected" + (c.ok ? "" : ": " + c.error));
  eq(fe.featureValue("protocol"), "vt100", "a feature the backend wrote is read");
  eq(fe.featureValue("feature-missing"), "the default", "a feature it did not write keeps its default");
  check(fe.state == xenbus.STATE_CONNECTED && fe.backendState == xenbus.STATE_CONNECTED, "both ends are Connected");

  const cons = new consoleRing.ConsoleRing(page, port.channel!);
  for (let i = 0; i < lines; i++) cons.write("line " + i.toString() + " of the second console\n");
  const d = sched.waitFor(cons.drain(), 10 * time.NS_PER_S);
  check(d.ok && cons.backlog() == 0, "every byte reached the backend (flow control, nothing dropped)");

  const cl = sched.waitFor(fe.close(), time.NS_PER_S);
  check(cl.ok && fe.state == xenbus.STATE_CLOSED, "closed" + (cl.ok ? "" : ": " + cl.error));
  check(g!.end() == 0, "the backend unmapped the ring: end_access succeeds");
  check(port.channel!.close() == 0, "closed the event channel");
  console.log("console bytes: " + cons.written.toString());
}

/** The test closes the backend before we connect: a clear error, and the watch is dropped. */
export function xenbusClosing(): void {
  const fe = new xenbus.Frontend(xenstore.open(), "console", "1");
  const c = sched.waitFor(fe.connect(), time.NS_PER_S);
  eq(c.error, "device/console/1: the backend /local/domain/0/backend/console/1/1 is closing (state 6)", "a closed backend is a clear error");
  check(fe.watch == null, "the backend-state watch was dropped");
}
