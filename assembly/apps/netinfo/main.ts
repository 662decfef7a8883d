// netinfo: brings the network up — a DHCP lease, or the static address of the command line
// (xl extra="ip=10.0.0.2/24 gw=10.0.0.1") — and prints what the interface got:
//
//   netinfo: address 10.0.0.2/24 gateway 10.0.0.1 mac 00:16:3e:00:00:01 mtu 1500 (dhcp)
//
// then TEST PASS; or FAIL with the reason, as its last line ("tcpip: no DHCP lease in 10 s on vif 0: is the
// vif on a bridge with a DHCP server?"). dhcp-timeout=<ms> on the command line shortens
// the wait for a lease.
import { boot, console, sched, tcpip, time } from "../../runtime";
export * from "../../runtime/tcpip/exports";

const opts = new tcpip.UpOptions();
const args = boot.args();
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a.startsWith("dhcp-timeout=")) {
    const ms = I64.parseInt(a.substring(13));
    if (ms > 0) opts.dhcpTimeoutNs = ms * time.NS_PER_MS;
  }
}

function report(i: tcpip.Interface): string {
  console.log(
    "netinfo: address " + i.cidr + " gateway " + (i.gateway != 0 ? i.gatewayText : "none") + " mac " + i.mac + " mtu " + i.mtu.toString() +
      (i.dhcp ? " (dhcp)" : " (static)"),
  );
  if (i.address == 0 || i.prefix < 1) return "FAIL the interface came up without an address";
  if (!i.linkUp) return "FAIL the link is down: " + i.device.broken;
  return "TEST PASS";
}

const up = sched.wait(tcpip.up(opts));
console.log(up.ok ? report(up.iface!) : "FAIL " + up.error);
