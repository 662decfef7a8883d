// The Morgana runtime API: everything an application needs, in one import.
//
//   import { console, time, boot, exit } from "../../runtime";
//
// The contract with the host underneath is shim/ABI.md.
import * as console from "./console";
import * as time from "./time";
import * as boot from "./boot";
import * as sched from "./sched";
import * as iopage from "./iopage";
import * as evtchn from "./xen/evtchn";
import * as gnttab from "./xen/gnttab";
import * as xenstore from "./xen/xenstore";
import * as xenbus from "./xen/xenbus";
import * as ring from "./xen/ring";
import * as consoleRing from "./xen/console-ring";
import * as block from "./block";
import * as sqlite from "./sqlite";
import * as net from "./net";
export { console, time, boot, sched, iopage, evtchn, gnttab, xenstore, xenbus, ring, consoleRing, block, sqlite, net };
import * as tcpip from "./tcpip";
export { tcpip };
export { Future, Task } from "./sched";
export { Platform, BootInfo } from "./boot";
export { poweroff, reboot, panic, exit } from "./system";
export { VERSION } from "./version";
