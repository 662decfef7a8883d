// Event channels (runtime/xen/evtchn.ts, ABI.md §8) over a loopback pair:
// notify, latching, mask / unmask without a lost wakeup, close, errors.
import { evtchn, sched, time } from "../../runtime";
import * as abi from "../../runtime/abi";
import { check } from "../../runtime/testing";

export function evtchnCases(): void {
  const a = evtchn.allocUnbound(abi.DOMID_SELF);
  check(a.channel != null, "alloc_unbound(DOMID_SELF) gives a port");
  const A = a.channel!;
  const b = evtchn.bindInterdomain(abi.DOMID_SELF, A.port);
  check(b.channel != null && b.channel!.port != A.port, "bind_interdomain to it gives a second port");
  const B = b.channel!;

  // A wait, then a notification from the other end.
  const w = A.next();
  check(B.notify() == 0, "notify returns 0");
  sched.waitFor(w, time.NS_PER_S);
  check(w.ok, "the waiting side wakes");

  // An event with nobody waiting is latched, not lost.
  A.notify();
  sched.wait(sched.sleep(time.NS_PER_MS)); // the loop dispatches it: nobody waits on B
  const w2 = B.next();
  check(w2.ok, "an event that came before the wait resolves the wait at once");

  // Masked: the event stays pending and does not wake block().
  check(A.mask() == 0, "mask returns 0");
  B.notify();
  const t0 = time.monotonic();
  check(abi.block(t0 + 5 * time.NS_PER_MS) == 0, "a masked pending port does not wake block()");
  const buf = memory.data(64);
  check(abi.evtchn_poll(buf, 64) == 0, "poll takes no masked port");
  check(A.unmask() == 0, "unmask returns 0");
  // No deadline, so no timed assertion: a lost wakeup hangs (the harness reports a deadlock).
  check(abi.block(abi.NO_DEADLINE) == 1, "after unmask, block() with no deadline returns 1: no lost wakeup");
  const w3 = A.next();
  sched.waitFor(w3, time.NS_PER_S);
  check(w3.ok, "the event sent while masked is delivered after unmask");

  // poll is test-and-clear, and respects len.
  A.notify();
  B.notify();
  check(abi.evtchn_poll(buf, 4) == 1, "poll with room for one port takes one");
  check(abi.evtchn_poll(buf, 64) == 1, "the other stays pending for the next poll");
  check(abi.evtchn_poll(buf, 64) == 0, "then nothing is pending");

  // An event pending when its timeout is found expired wins: the loop dispatches events before
  // it fires timers (a vCPU descheduled past a deadline must not turn a delivered event into a timeout).
  const w5 = A.next();
  const guarded = sched.timeout(w5, time.NS_PER_MS);
  B.notify();
  const late = time.monotonic() + 2 * time.NS_PER_MS;
  while (time.monotonic() < late) {} // the deadline passes with the event pending
  sched.wait(guarded);
  check(guarded.ok && w5.ok, "an event pending when its 1 ms timeout is found expired wins over the timeout");

  // Close: the port is gone; waiters are told.
  const w4 = B.next();
  check(A.close() == 0, "close returns 0");
  check(abi.evtchn_notify(A.port) == -abi.EINVAL, "notify on a closed port is -EINVAL");
  check(B.notify() == 0, "notify on a port whose peer closed is dropped, returning 0");
  B.close();
  check(w4.failed, "closing a channel fails its waiters");

  // Errors.
  check(abi.evtchn_bind_interdomain(abi.DOMID_SELF, 4000) == -abi.EINVAL, "binding to a port that is not unbound is -EINVAL");
  check(abi.evtchn_alloc_unbound(999) == -abi.ESRCH, "alloc_unbound for a domain that does not exist is -ESRCH");
  check(abi.evtchn_mask(4000) == -abi.EINVAL, "mask of an unknown port is -EINVAL");
  check(abi.evtchn_poll(0xffff_fff0, 64) == -abi.EFAULT, "poll into a bad buffer is -EFAULT");
}
