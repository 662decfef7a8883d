// The xenstore client (runtime/xen/xenstore.ts) against the harness's
// xenstored: operations, permissions, transactions, watches, and hostile replies
// (the test installs the hooks that produce them).
import { sched, time, xenstore } from "../../runtime";
import * as abi from "../../runtime/abi";
import { TxBody, XsReply } from "../../runtime/xen/xenstore";
import { check, eq } from "../../runtime/testing";

/** How long a case waits for xenstored's reply: a bound against a hang, not a speed (a busy
 * host under Xen can take seconds; the harness answers at once). */
const T = 30 * time.NS_PER_S;
/** How long a case waits for something a dom0 script does (xs-watch's external write). */
const DOM0_T = 60 * time.NS_PER_S;

function done(r: XsReply): XsReply {
  return sched.waitFor(r, T) ? r : r;
}

export function xsBasic(): void {
  const xs = xenstore.open();
  eq(done(xs.read("domid")).text(), "1", "read domid");
  check(done(xs.write("data/a/b", "one")).ok, "write creates missing parents");
  eq(done(xs.read("data/a/b")).text(), "one", "read it back");
  check(done(xs.mkdir("data/a/c")).ok, "mkdir");
  eq(done(xs.directory("data/a")).list().join(","), "b,c", "directory lists the children");
  eq(done(xs.getPerms("data/a/b")).list().join(","), "n1", "a node we created is ours (n1)");
  check(done(xs.setPerms("data/a/b", ["n1", "r0"])).ok, "set permissions on our node");
  eq(done(xs.getPerms("data/a/b")).list().join(","), "n1,r0", "get them back");
  check(done(xs.rm("data/a")).ok, "rm removes a subtree");
  const gone = done(xs.read("data/a/b"));
  check(gone.errno == abi.ENOENT, "read after rm: ENOENT");
  eq(gone.error, "xenstore read data/a/b: ENOENT", "the error names the operation and the path");
  // Permissions: another domain's tree, and keys dom0 owns.
  check(done(xs.read("/local/domain/0/name")).errno == abi.EACCES, "reading dom0's tree is EACCES");
  check(done(xs.write("name", "evil")).errno == abi.EACCES, "writing our read-only name is EACCES");
  check(done(xs.directory("/local/domain/0")).errno == abi.EACCES, "listing dom0's tree is EACCES");
  check(done(xs.setPerms("data", ["n0"])).errno == abi.EACCES, "giving our node away is EACCES");
  check(done(xs.read("bad//path")).errno == abi.EINVAL, "a malformed path is EINVAL");
  eq(done(xs.read("/local/domain/1/name")).text(), "xentest", "an absolute path to our own key");
  // Requests larger than the 1 KiB ring stream through it; above XENSTORE_PAYLOAD_MAX they are refused here.
  const long = "x".repeat(3000);
  check(done(xs.write("data/long", long)).ok, "a 3 KB write streams through the 1 KiB request ring");
  check(done(xs.read("data/long")).text() == long, "and reads back through the 1 KiB reply ring");
  const huge = done(xs.write("data/huge", "x".repeat(5000)));
  check(huge.errno == abi.E2BIG && huge.error.includes("XENSTORE_PAYLOAD_MAX"), "a request over 4096 bytes is E2BIG before it is sent");
  check(xs.errors == 0 && xs.inFlight() == 0, "no stray replies, nothing in flight");
}

class Increment extends TxBody {
  r: XsReply | null = null;
  restart(): void {
    this.r = null;
  }
  step(): void {
    const xs = xenstore.open();
    const a = this.awaited;
    if (this.r == null) {
      this.await((this.r = xs.read("data/counter", this.tx)));
    } else if (a === this.r) {
      if (!this.r!.ok) {
        this.fail(this.r!.error);
        return;
      }
      const v = I32.parseInt(this.r!.text());
      this.await(xs.write("data/counter", (v + 1).toString(), this.tx));
    } else if (a!.ok) this.finish();
    else this.fail(a!.error);
  }
}

export function xsTransaction(): void {
  const xs = xenstore.open();
  done(xs.write("data/counter", "1"));
  // The test's dom0 writes data/counter = 100 before our first commit: EAGAIN, retry.
  const tx = sched.waitFor(xs.transaction(new Increment()), T);
  check(tx.ok, "the transaction committed" + (tx.ok ? "" : ": " + tx.error));
  check(tx.value == 2, "after one retry on EAGAIN (" + tx.value.toString() + " attempts)");
  eq(done(xs.read("data/counter")).text(), "101", "the retry saw dom0's write");
  const bad = done(xs.read("data/counter", 999));
  check(bad.errno == abi.ENOENT, "a request in an unknown transaction is ENOENT");
}

export function xsWatch(): void {
  const xs = xenstore.open();
  done(xs.write("data/w/x", "0"));
  const a = xs.watch("data/w", "tok-a");
  const b = xs.watch("/local/domain/1/data", "tok-b");
  const a0 = sched.waitFor(a.next(), T);
  eq(a0.ok ? a0.path : a0.error, "data/w", "a relative watch fires at once with its relative path");
  const b0 = sched.wait(b.next());
  eq(b0.path, "/local/domain/1/data", "an absolute watch fires at once with its absolute path");
  done(xs.write("data/w/x", "1"));
  const a1 = sched.waitFor(a.next(), T);
  eq(a1.ok ? a1.path : a1.error, "data/w/x", "a relative watch reports the changed child, relative");
  const b1 = sched.waitFor(b.next(), T);
  eq(b1.ok ? b1.path : b1.error, "/local/domain/1/data/w/x", "the parent watch fires for the same change");
  // A change made by dom0 later (a timed event the test scheduled) wakes the blocked domain.
  // Under Xen a dom0 script makes it once it has seen data/w/x = 1: on a busy host that
  // takes seconds, so the wait is bounded by DOM0_T, not by xenstored's reply time T.
  const ext = sched.waitFor(a.next(), DOM0_T);
  eq(ext.ok ? ext.path : ext.error, "data/w/external", "dom0's later write fires the watch");
  check(done(xs.unwatch(a)).ok, "unwatch");
  done(xs.write("data/w/x", "2"));
  const b2 = sched.waitFor(b.next(), T);
  check(b2.ok && a.queue.length == 0, "after unwatch only the other watch fires");
  check(done(xs.unwatch(a)).errno == abi.ENOENT, "unwatching again is ENOENT");
  check(xs.errors == 0, "no stray messages");
}

export function xsTrickle(): void {
  // The test makes xenstored deliver one reply byte per service.
  const xs = xenstore.open();
  eq(done(xs.read("name")).text(), "xentest", "a read answered one byte at a time");
  done(xs.write("data/t/one", "1"));
  done(xs.write("data/t/two", "2"));
  eq(done(xs.directory("data/t")).list().join(","), "one,two", "a directory answered one byte at a time");
  const w = xs.watch("data/t", "trickle");
  const e = sched.waitFor(w.next(), T);
  eq(e.ok ? e.path : e.error, "data/t", "a watch event assembled byte by byte");
  // Several requests in flight at once, replies matched by id.
  const r1 = xs.read("data/t/one");
  const r2 = xs.read("data/t/two");
  const r3 = xs.read("domid");
  sched.waitFor(sched.join([r1, r2, r3]), T);
  eq(r1.text() + r2.text() + r3.text(), "121", "three requests in flight get their own replies");
  check(xs.errors == 0, "no parse errors");
}

export function xsMalformed(): void {
  const xs = xenstore.open();
  const big = done(xs.read("data/big"));
  check(big.errno == abi.E2BIG, "a reply longer than XENSTORE_PAYLOAD_MAX fails its request with E2BIG");
  eq(done(xs.read("domid")).text(), "1", "the oversized payload was drained: the next reply parses");
  const u = done(xs.read("data/unknown-id"));
  eq(u.ok ? u.text() : u.error, "real", "a reply with an unknown req_id is dropped; the real one is used");
  check(xs.errors == 2, "both were counted as errors (" + xs.errors.toString() + ")");
  eq(xs.lastError.substring(0, 26), "reply with unknown req_id ", "the error says why");
  const t = done(xs.read("data/badtype"));
  check(t.errno == abi.EIO && t.error.includes("malformed reply"), "a reply of the wrong type is malformed (EIO)");
  const l = done(xs.directory("data/badlist"));
  check(l.errno == abi.EIO, "a directory without its final NUL is malformed");
  const e = done(xs.read("data/badname"));
  check(e.errno == abi.EIO, "an XS_ERROR with an unknown name is malformed");
  const ack = done(xs.write("data/badack", "x"));
  check(ack.errno == abi.EIO, "an acknowledgement other than OK is malformed");
  const tx = done(xs.transactionStart());
  check(tx.errno == abi.EIO, "a transaction id that is not a number is malformed");
  const nt = done(xs.read("data/notoken"));
  check(nt.ok && xs.lastError.includes("XS_WATCH_EVENT"), "a watch event without a token is dropped and reported");
  // Truncated: the header promises more than ever arrives; a timeout ends the wait.
  const tr = xs.read("data/truncated");
  sched.waitFor(tr, 50 * time.NS_PER_MS);
  check(tr.failed && xs.inFlight() == 0, "a truncated reply times out, and the request is forgotten");
}
