// The Morgana runtime API: everything an application needs, in one import.
//
//   import { console, time, boot, exit } from "../../runtime";
//
// The contract with the host underneath is shim/ABI.md.
import * as console from "./console";
import * as time from "./time";
import * as boot from "./boot";
export { console, time, boot };
export { Platform, BootInfo } from "./boot";
export { poweroff, reboot, panic, exit } from "./system";
export { VERSION } from "./version";
