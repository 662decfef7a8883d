// xentest: in-guest tests of the Xen runtime layer (rings, scheduler, event
// channels, grant tables, xenstore, xenbus), one case per run, chosen by the
// command line. test/runtime/xentest.test.ts runs each case in the harness
// with the backends and hooks it needs, and asserts on the output.
import { boot, console } from "../../runtime";
import { result } from "../../runtime/testing";
import { ringWrap, ringNotify } from "./ring-cases";
import { sleepers, combinators } from "./sched-cases";
import { evtchnCases } from "./evtchn-cases";
import { gnttabCases, gnttabWriteRo, gnttabExport } from "./gnttab-cases";
import { xsBasic, xsTransaction, xsWatch, xsTrickle, xsMalformed } from "./xs-cases";
import { xenbusMissing, xenbusClosing, pvConsole } from "./xenbus-cases";

const args = boot.args();
const which = args.length > 0 ? args[0] : "";
const arg = (i: i32): i32 => (args.length > i ? I32.parseInt(args[i]) : 0);

if (which == "ring-wrap") ringWrap();
else if (which == "ring-notify") ringNotify();
else if (which == "sleepers") sleepers();
else if (which == "combinators") combinators();
else if (which == "evtchn") evtchnCases();
else if (which == "gnttab") gnttabCases(arg(1), arg(2));
else if (which == "gnttab-write-ro") gnttabWriteRo(arg(1));
else if (which == "gnttab-export") gnttabExport();
else if (which == "xs-basic") xsBasic();
else if (which == "xs-tx") xsTransaction();
else if (which == "xs-watch") xsWatch();
else if (which == "xs-trickle") xsTrickle();
else if (which == "xs-malformed") xsMalformed();
else if (which == "xenbus-missing") xenbusMissing();
else if (which == "xenbus-closing") xenbusClosing();
else if (which == "pvconsole") pvConsole(arg(1));
else console.log("xentest: unknown case \"" + which + "\"");
result();
