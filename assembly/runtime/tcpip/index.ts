// The TCP/IP API: lwIP 2.1.3 (raw API, linked as the native module "lwip") over a network
// device (runtime/net). An app that uses it selects lwIP in app.json ("native": ["lwip"],
// "vif": true) and re-exports lwIP's callbacks:
//
//   import { console, sched, panic, tcpip } from "../../runtime";
//   export * from "../../runtime/tcpip/exports";
//
//   const up = sched.wait(tcpip.up());             // DHCP, or ip=10.0.0.2/24 gw=10.0.0.1 in extra=
//   if (!up.ok) panic(up.error);
//   console.log("address " + up.iface!.cidr);
//   const l = sched.wait(tcpip.tcp.listen(7));
//   const a = sched.wait(l.listener!.accept());
//   const flow = a.flow!;
//   const r = sched.wait(flow.read());             // empty data: the peer closed its side
//   sched.wait(flow.write(r.data!));               // settles once lwIP has the bytes
//   sched.wait(flow.close());
//
// Every call returns a future; errors are rejections naming the connection
// ("tcp 10.0.0.1:40000: connection reset by peer", "tcp 10.0.0.9:5000: connection
// refused", "tcp listen on port 80: address in use"). One runtime task makes every lwIP
// call (stack.ts); lwIP's callbacks only settle futures. README.md has the whole API.
import * as tcp from "./tcp";
import * as udp from "./udp";
import * as addr from "./addr";

export { tcp, udp, addr };
export { up, UpOp, UpOptions, Interface, Stats, stats, poolUsed, DHCP_TIMEOUT_NS } from "./stack";
export { POOL_PBUF_POOL, POOL_TCP_PCB, POOL_TCP_PCB_LISTEN, POOL_UDP_PCB, POOL_TCP_SEG, POOL_PBUF } from "./lwip";
