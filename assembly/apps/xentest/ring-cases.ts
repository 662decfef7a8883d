// The generic shared ring (runtime/xen/ring.ts): indices wrapping at 2^32 and
// notification hold-off (req_event / rsp_event), front and back end on one page.
import { iopage, ring } from "../../runtime";
import { check } from "../../runtime/testing";

const ENTRY: u32 = 16;

/** Requests carry a sequence number; responses carry it doubled. */
export function ringWrap(): void {
  const page = iopage.alloc();
  const start: u32 = 0xffff_fff0;
  ring.initShared(page, start);
  const front = new ring.FrontRing(page, ENTRY);
  const back = new ring.BackRing(page, ENTRY);
  check(front.nrEnts == 128, "a 16-byte entry gives 128 slots ((4096 - 64) / 16 rounded down to a power of 2)");
  let seq: u32 = 0;
  let want: u32 = 0;
  let inOrder = true;
  for (let round = 0; round < 200; round++) {
    const k = 1 + (round % 9);
    for (let i = 0; i < k; i++) {
      const slot = front.nextRequest();
      if (slot == 0) break;
      store<u32>(slot, seq++);
    }
    front.pushRequests();
    let got = back.unconsumedRequests();
    while (got > 0) {
      for (let i = 0; i < got; i++) {
        const v = load<u32>(back.nextRequest());
        store<u32>(back.nextResponse(), v * 2);
      }
      got = back.finalCheckForRequests();
    }
    back.pushResponses();
    let rsp = front.unconsumedResponses();
    while (rsp > 0) {
      for (let i = 0; i < rsp; i++) if (load<u32>(front.nextResponse()) != want++ * 2) inOrder = false;
      rsp = front.finalCheckForResponses();
    }
  }
  check(inOrder && want == seq && seq > 900, "1000 requests and responses cross 2^32 in order");
  check(front.reqProdPvt == start + seq && front.reqProdPvt < 0x1000, "req_prod wrapped past 2^32 to a small number");
  check(load<u32>(page + ring.SRING_RSP_PROD) == front.rspCons, "rsp_prod and rsp_cons agree after the wrap");

  // Fill the ring exactly across the wrap point.
  const p2 = iopage.alloc();
  ring.initShared(p2, 0xffff_ffc0);
  const f2 = new ring.FrontRing(p2, ENTRY);
  let placed = 0;
  while (f2.nextRequest() != 0) placed++;
  check(placed == 128 && f2.freeRequests() == 0, "exactly nr_ents requests fit, then nextRequest() says full");
  f2.pushRequests();
  const b2 = new ring.BackRing(p2, ENTRY);
  check(b2.unconsumedRequests() == 128, "the back end sees all 128 across the wrap");

  // A hostile back end: rsp_prod far beyond the requests made.
  store<u32>(page + ring.SRING_RSP_PROD, front.rspCons + 1000);
  check(front.unconsumedResponses() == -1 && front.corrupt, "rsp_prod beyond the requests in flight is reported, not trusted");
  store<u32>(p2 + ring.SRING_REQ_PROD, b2.reqCons + 0x8000_0000);
  check(b2.unconsumedRequests() == -1 && b2.corrupt, "req_prod more than nr_ents ahead is reported, not trusted");
}

/** ring.h's hold-off: notify exactly when the peer asked for it. */
export function ringNotify(): void {
  const page = iopage.alloc();
  ring.initShared(page, 0xffff_fffe);
  const front = new ring.FrontRing(page, ENTRY);
  const back = new ring.BackRing(page, ENTRY);
  // Fresh ring: req_event = start + 1, so the first request notifies.
  front.nextRequest();
  check(front.pushRequests(), "the first request notifies (req_event = req_prod + 1 at init)");
  front.nextRequest();
  check(!front.pushRequests(), "a second request before the back end re-arms does not notify");
  let got = back.unconsumedRequests();
  check(got == 2, "the back end sees 2 requests");
  back.nextRequest();
  back.nextRequest();
  check(back.finalCheckForRequests() == 0, "final check: nothing more, req_event re-armed");
  check(load<u32>(page + ring.SRING_REQ_EVENT) == back.reqCons + 1, "req_event = req_cons + 1 (crossing 2^32)");
  front.nextRequest();
  front.nextRequest();
  check(front.pushRequests(), "a batch pushed after re-arming notifies once");
  got = back.unconsumedRequests();
  back.nextRequest();
  // A request that races with the final check is found by its second look.
  front.nextRequest();
  front.pushRequests();
  back.nextRequest();
  check(back.finalCheckForRequests() == 1, "final check finds the request that raced with it");
  back.nextRequest();
  check(back.finalCheckForRequests() == 0, "then nothing more");

  // Responses: the front end asks for a notification with its final check.
  check(front.finalCheckForResponses() == 0, "no responses yet; rsp_event armed");
  back.nextResponse();
  check(back.pushResponses(), "the first response after arming notifies");
  back.nextResponse();
  check(!back.pushResponses(), "the next one, before the front end re-arms, does not");
  check(front.unconsumedResponses() == 2, "the front end sees both responses");
  front.nextResponse();
  front.nextResponse();
  check(front.finalCheckForResponses() == 0, "front final check re-arms");
  back.nextResponse();
  back.nextResponse();
  check(back.pushResponses(), "a batch of two after re-arming notifies");
}
