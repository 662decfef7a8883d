// hello: the smallest Morgana unikernel. Greets, shows its command line and the
// runtime version, then powers off (by returning from the top level).
import { console, boot, VERSION } from "../../runtime";

console.log("Hello from Morgana!");
console.log("cmdline: " + boot.cmdline());
console.log("runtime: morgana " + VERSION);
