// xsfuzz: xenstore requests against a hostile xenstored (tools/fuzz): writes keys,
// reads them back one by one and eight at once, lists their directory, watches one and
// changes it, and runs a transaction, each request with a deadline of <timeout-ms>.
// A value that comes back different from the one written is reported as wrong data.
//
//   xsfuzz <seed> <timeout-ms>
//
// Exactly one result line: TEST PASS, FAIL: wrong data: <what>, or FAIL: <the error>.
import { boot, console, sched, xenstore } from "../../runtime";

const KEYS = 8;

function fail(why: string): void {
  console.log("FAIL: " + why);
}

function value(seed: string, i: i32): string {
  return "v" + i.toString() + "-" + seed;
}

function main(): void {
  const args = boot.args();
  if (args.length < 2) return fail("usage: xsfuzz <seed> <timeout-ms>");
  const seed = args[0];
  const xs = xenstore.open();
  xs.requestTimeoutNs = I64.parseInt(args[1]) * 1_000_000;
  for (let i = 0; i < KEYS; i++) {
    const r = sched.wait(xs.write("data/fuzz/k" + i.toString(), value(seed, i)));
    if (!r.ok) return fail(r.error);
  }
  // One at a time, then eight in flight together.
  for (let i = 0; i < KEYS; i++) {
    const r = sched.wait(xs.read("data/fuzz/k" + i.toString()));
    if (!r.ok) return fail(r.error);
    if (r.text() != value(seed, i)) return fail("wrong data: read data/fuzz/k" + i.toString() + " gave \"" + r.text() + "\", not \"" + value(seed, i) + "\"");
  }
  const rs = new Array<xenstore.XsReply>();
  for (let i = 0; i < KEYS; i++) rs.push(xs.read("data/fuzz/k" + i.toString()));
  let error = "";
  for (let i = 0; i < KEYS; i++) {
    const r = sched.wait(rs[i]); // every request settles (its deadline) before the result
    if (error.length > 0) continue;
    if (!r.ok) error = r.error;
    else if (r.text() != value(seed, i)) error = "wrong data: read data/fuzz/k" + i.toString() + " (8 in flight) gave \"" + r.text() + "\", not \"" + value(seed, i) + "\"";
  }
  if (error.length > 0) return fail(error);
  const d = sched.wait(xs.directory("data/fuzz"));
  if (!d.ok) return fail(d.error);
  const names = d.list();
  if (names.length != KEYS) return fail("wrong data: data/fuzz lists " + names.length.toString() + " keys, not " + KEYS.toString() + " (" + names.join(",") + ")");
  // A watch: its first event (the registration's), then the one for a change.
  const wt = xs.watch("data/fuzz/k0", "fz");
  const w1 = sched.waitFor(wt.next(), xs.requestTimeoutNs);
  if (!w1.ok) return fail("watch data/fuzz/k0: " + w1.error);
  const c = sched.wait(xs.write("data/fuzz/k0", "changed"));
  if (!c.ok) return fail(c.error);
  const w2 = sched.waitFor(wt.next(), xs.requestTimeoutNs);
  if (!w2.ok) return fail("watch data/fuzz/k0 after a change: " + w2.error);
  const u = sched.wait(xs.unwatch(wt));
  if (!u.ok) return fail(u.error);
  const t = sched.wait(xs.transactionStart());
  if (!t.ok) return fail(t.error);
  const tx = <u32>U32.parseInt(t.text());
  const tw = sched.wait(xs.write("data/fuzz/tx", "in-tx", tx));
  if (!tw.ok) return fail(tw.error);
  const te = sched.wait(xs.transactionEnd(tx, true));
  if (!te.ok) return fail(te.error);
  const tr = sched.wait(xs.read("data/fuzz/tx"));
  if (!tr.ok) return fail(tr.error);
  if (tr.text() != "in-tx") return fail("wrong data: data/fuzz/tx after the transaction is \"" + tr.text() + "\"");
  console.log("TEST PASS: " + xs.errors.toString() + " malformed replies dropped, " + xs.timeouts.toString() + " timeouts");
}

main();
