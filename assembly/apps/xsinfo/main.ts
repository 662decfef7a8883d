// xsinfo: reads who it is from xenstore (domid, name, vm path), watches a key
// it then writes, and prints what it learnt through the console.
// Prints one result line: TEST PASS, or FAIL: <what went wrong>.
// Command line "hold": before the result, wait until dom0 writes data/done, so a
// dom0 script can read this domain's keys while it surely still exists.
import { boot, console, sched, xenstore, time } from "../../runtime";

const TIMEOUT = 5 * time.NS_PER_S;
const xs = xenstore.open();

function fail(what: string): void {
  console.log("FAIL: " + what);
}

// Reads a key, waiting at most TIMEOUT; "" after printing why on failure.
function get(key: string): string {
  const r = xs.read(key);
  sched.wait(sched.timeout(r, TIMEOUT));
  if (!r.ok) {
    fail(r.error);
    return "";
  }
  return r.text();
}

// Reads a key that may not exist yet: "" if it does not, no message.
function peek(key: string): string {
  const r = xs.read(key);
  sched.wait(sched.timeout(r, TIMEOUT));
  return r.ok ? r.text() : "";
}

// Waits for the watch's next event; its path, or "" on timeout.
function nextEvent(w: xenstore.Watch): string {
  const e = w.next();
  sched.wait(sched.timeout(e, TIMEOUT));
  return e.ok ? e.path : "";
}

function main(): bool {
  // One result line only: stop at the first failure.
  const domid = get("domid");
  if (domid == "") return false;
  const name = get("name");
  if (name == "") return false;
  const vm = get("vm");
  if (vm == "") return false;
  console.log("domid: " + domid);
  console.log("name: " + name);
  console.log("vm: " + vm);
  const vmName = get(vm + "/name");
  if (vmName == "") return false;
  if (vmName != name) {
    fail("the vm's name (" + vmName + ") is not the domain's (" + name + ")");
    return false;
  }

  const w = xs.watch("data/xsinfo", "xsinfo");
  sched.wait(sched.timeout(w.registered!, TIMEOUT));
  if (!w.registered!.ok) {
    fail(w.registered!.error);
    return false;
  }
  // xenstored fires a watch once when it is set, then at each change.
  if (nextEvent(w) != "data/xsinfo") {
    fail("no initial watch event");
    return false;
  }
  const wr = sched.wait(sched.timeout(xs.write("data/xsinfo", name + " was here"), TIMEOUT));
  if (!wr.ok) {
    fail(wr.error);
    return false;
  }
  const path = nextEvent(w);
  if (path != "data/xsinfo") {
    fail("no watch event after the write");
    return false;
  }
  console.log("watch xsinfo: " + path + " = " + get("data/xsinfo"));
  if (boot.args().includes("hold")) {
    const d = xs.watch("data/done", "done");
    sched.wait(sched.timeout(d.registered!, TIMEOUT));
    if (!d.registered!.ok) {
      fail(d.registered!.error);
      return false;
    }
    // the first event is the watch being set; then wait for dom0's write (30 s at most)
    for (let i = 0; i < 6 && peek("data/done") == ""; i++) nextEvent(d);
    if (peek("data/done") == "") {
      fail("dom0 never wrote data/done");
      return false;
    }
    console.log("dom0 is done reading");
  }
  return true;
}

if (main()) console.log("TEST PASS");
