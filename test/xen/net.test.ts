// Networking under real Xen (the test bed): guests' vifs on dom0's bridge xenbr0
// (10.42.0.1/24), Linux's xen-netback as the backend and dom0's own stack as the peer.
// dom0's tools: busybox ping, ip, udhcpd, sha256sum, and net-peer
// (tools/testbed/dom0/net-peer.c: ARP probe, UDP and TCP clients, nettest's stop frame).
// One test-bed boot for the whole file; the guests run one after another:
//
//   1. nettest serve 10.42.0.2 (the static address on its command line, extra=), its MAC
//      from the xl config: dom0 probes it with ARP from before `xl create` (the first
//      answer is the signal to start, and times the guest's start), pings it 1,000 times
//      at 10 ms, finds its MAC in `ip neigh`, sends it 200 UDP datagrams to echo (dom0's
//      stack sends them with a blank checksum; nettest answers with a blank one: offload
//      both ways), then the stop frame; the guest powers off and run-guest destroys it:
//      no domain, no vif left.
//   2. nettest serving again, `xl destroy`ed while connected: no vif left either.
//   3. netinfo (lwIP) gets a lease from busybox udhcpd on xenbr0 and prints it.
//   4. echo (lwIP) at a static address: 64 MiB each way over one TCP connection from
//      dom0, equal SHA-256; UDP datagrams; then `xl shutdown`, and its summary says
//      nothing is held.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImage } from "../../tools/lib/image.ts";
import { ExecResult, GuestResult, GuestSpec, Testbed } from "../../tools/testbed/testbed.ts";

const BOOT_S = 420;
const GUEST_IP = "10.42.0.2";
const IP_RX = GUEST_IP.replace(/\./g, "\\.");
const MAC = "00:16:3e:4e:54:01";
const MAC2 = "00:16:3e:4e:54:02";
const MAC3 = "00:16:3e:4e:54:03";
const MAC4 = "00:16:3e:4e:54:04";
const PEER = "/usr/lib/morgana/net-peer";
const PINGS = 1000;
const DATAGRAMS = 200;
const TCP_MIB = 64;

function summary(r: GuestResult) {
  return `${r.domain}: ${r.detail}\nconsole:\n${r.console.slice(0, 3000)}\nxl: ${r.xl.join("\n")}\nxl log: ${r.xlLog.join("\n")}\ndmesg: ${r.dmesg.join("\n")}`;
}

/** A guest of an app's generated xl config with its vif on xenbr0 at a given MAC. */
function withVif(xl: string, mac: string, spec: Omit<GuestSpec, "configText" | "baseDir">): GuestSpec {
  const text = readFileSync(xl, "utf8");
  if (!/^vif = .*$/m.test(text)) throw new Error(`${xl} has no vif line: is "vif": true in the app's app.json?`);
  return { ...spec, configText: text.replace(/^vif = .*$/m, `vif = [ 'bridge=xenbr0, mac=${mac}' ]`), baseDir: dirname(resolve(xl)) };
}

/**
 * ARP requests for the guest's address every 2 ms, until its first answer (sent before the guest is
 * created). Guests share the address: dom0 forgets the last one's MAC first.
 */
const probe = (tb: Testbed) => tb.exec(`ip neigh flush dev xenbr0 >/dev/null 2>&1; ${PEER} arp xenbr0 ${GUEST_IP} 150000 2000`, 240);

// Waits (up to 20 s) until dom0 has no guest domain and no vif, then shows what it has.
const LEFTOVERS = `for i in $(seq 40); do
  v=$(ip -o link | grep -c ': vif') n=$(xl list | tail -n +2 | grep -vc '^Domain-0 ')
  [ "$v" = 0 ] && [ "$n" = 0 ] && break; sleep 0.5
done
echo "== xl list"; xl list; echo "== ip link"; ip -o link; echo "== brif"; ls /sys/class/net/xenbr0/brif`;

/** The lines of LEFTOVERS' output after "== <name>". */
function section(out: string, name: string): string[] {
  const lines = out.split("\n");
  const from = lines.indexOf(`== ${name}`);
  if (from < 0) throw new Error(`dom0's report has no "== ${name}" section:\n${out}`);
  const rest = lines.slice(from + 1);
  const to = rest.findIndex((l) => l.startsWith("== "));
  return (to < 0 ? rest : rest.slice(0, to)).filter((l) => l.trim());
}

function expectNothingLeft(after: ExecResult) {
  expect(
    section(after.output, "xl list")
      .slice(1)
      .map((l) => l.split(/\s+/)[0]),
  ).toEqual(["Domain-0"]);
  expect(section(after.output, "ip link").filter((l) => /: vif/.test(l))).toEqual([]);
  expect(section(after.output, "brif")).toEqual([]);
}

// busybox udhcpd on xenbr0: 10 addresses, the bridge as router.
const DHCPD = `cat > /tmp/udhcpd.conf <<EOF
start 10.42.0.50
end 10.42.0.59
interface xenbr0
lease_file /tmp/udhcpd.leases
option subnet 255.255.255.0
option router 10.42.0.1
option lease 600
EOF
rm -f /tmp/udhcpd.leases; touch /tmp/udhcpd.leases
udhcpd -f /tmp/udhcpd.conf </dev/null >/tmp/udhcpd.log 2>&1 &
sleep 0.5; pidof udhcpd >/dev/null && echo "udhcpd running" || cat /tmp/udhcpd.log`;

describe("networking under Xen, dom0 the peer", () => {
  let tb: Testbed;
  let bridge: ExecResult;
  let arp: ExecResult;
  let ping: ExecResult | undefined;
  let neigh: ExecResult | undefined;
  let udp: ExecResult | undefined;
  let ports: ExecResult | undefined;
  let stop: ExecResult;
  let serve: GuestResult;
  let after: ExecResult;
  let arp2: ExecResult;
  let destroy: ExecResult | undefined;
  let destroyed: GuestResult;
  let after2: ExecResult;
  let dhcpd: ExecResult;
  let netinfo: GuestResult;
  let leases: ExecResult;
  let input: ExecResult;
  let arp4: ExecResult;
  let tcp: ExecResult | undefined;
  let udp4: ExecResult | undefined;
  let shutdown: ExecResult | undefined;
  let echo: GuestResult;
  const figures: string[] = [];

  beforeAll(
    async () => {
      // Build before booting: a build error should not cost a boot.
      const nettestXl = (await buildImage("nettest")).xl;
      const netinfoXl = (await buildImage("netinfo")).xl;
      const echoXl = (await buildImage("echo")).xl;
      tb = await Testbed.start({ quiet: true, readyTimeoutS: BOOT_S });
      figures.push(`test bed: set-up ${tb.timings.setupMs} ms, boot to ready ${tb.timings.bootMs} ms`);
      bridge = await tb.exec("ip -4 -o addr show xenbr0");

      // 1. The prober goes first, so it runs before the domain exists (xl create takes seconds).
      const p1 = probe(tb);
      const g = tb.launch(withVif(nettestXl, MAC, { name: "nettest", extra: `serve ${GUEST_IP} 60000 offload`, timeoutS: 300 }));
      arp = await p1;
      if (arp.status === 0) {
        ports = await tb.exec("ls /sys/class/net/xenbr0/brif");
        ping = await tb.exec(`ping -q -c ${PINGS} -i 0.01 -W 10 ${GUEST_IP}; echo "ping exit $?"`, 240);
        neigh = await tb.exec(`ip neigh show ${GUEST_IP}`);
        udp = await tb.exec(`${PEER} udp ${GUEST_IP} 7 ${DATAGRAMS} 1400 3000`, 240);
      }
      // Always stopped, so the guest ends with its counts even when a step above failed.
      stop = await tb.exec(`${PEER} stop xenbr0 ${MAC}`);
      serve = await g.result;
      after = await tb.exec(LEFTOVERS);

      // 2. Destroyed while connected: netback's teardown of a live vif.
      const p2 = probe(tb);
      const g2 = tb.launch(withVif(nettestXl, MAC2, { name: "nettest-destroy", extra: `serve ${GUEST_IP} 120000`, timeoutS: 300 }));
      arp2 = await p2;
      if (arp2.status === 0) destroy = await tb.exec(`xl destroy ${g2.domain}; echo "destroy exit $?"`, 120);
      else await tb.exec(`${PEER} stop xenbr0 ${MAC2}`);
      destroyed = await g2.result;
      after2 = await tb.exec(LEFTOVERS);

      // 3. A DHCP lease from dom0.
      dhcpd = await tb.exec(DHCPD);
      netinfo = await tb.run(withVif(netinfoXl, MAC3, { name: "netinfo", extra: "dhcp-timeout=60000", timeoutS: 180 }));
      leases = await tb.exec("kill -USR1 $(pidof udhcpd); sleep 1; dumpleases -f /tmp/udhcpd.leases; kill $(pidof udhcpd)");

      // 4. TCP and UDP echo over lwIP.
      input = await tb.exec(`dd if=/dev/urandom of=/tmp/tcp-in bs=1M count=${TCP_MIB} 2>/dev/null; wc -c < /tmp/tcp-in`, 240);
      const p4 = probe(tb);
      const g4 = tb.launch(withVif(echoXl, MAC4, { name: "echo", extra: `ip=${GUEST_IP}/24 gw=10.42.0.1`, timeoutS: 600 }));
      arp4 = await p4;
      if (arp4.status === 0) {
        tcp = await tb.exec(
          `${PEER} tcp ${GUEST_IP} 7 /tmp/tcp-in /tmp/tcp-out 500; echo "== sha256"; sha256sum /tmp/tcp-in /tmp/tcp-out`,
          560,
        );
        udp4 = await tb.exec(`${PEER} udp ${GUEST_IP} 7 ${DATAGRAMS} 1400 3000`, 240);
      }
      shutdown = await tb.exec(`xl shutdown ${g4.domain}; echo "shutdown exit $?"`, 120);
      echo = await g4.result;
    },
    (BOOT_S + 900 + 4 * 600) * 1000,
  );

  afterAll(async () => {
    if (tb) figures.push(`QEMU total ${(await tb.stop()).totalMs} ms`);
    console.log(`[net figures]\n  ${figures.join("\n  ")}`);
  }, 60_000);

  it("dom0's xenbr0 has its address", () => {
    expect(bridge.output).toMatch(/inet 10\.42\.0\.1\/24/);
  });

  describe("nettest (the device, no TCP/IP stack)", () => {
    it("answers dom0's ARP request for its address with the MAC of its xl config", () => {
      expect(arp.status, `${arp.output}\n${summary(serve)}`).toBe(0);
      const m = new RegExp(`^arp: ${IP_RX} is at (\\S+) after ([\\d.]+) ms, (\\d+) requests$`, "m").exec(arp.output);
      expect(m, arp.output).not.toBeNull();
      expect(m![1]).toBe(MAC);
      figures.push(`ARP probe: answered ${m![2]} ms after the prober started (${m![3]} requests, one per 2 ms)`);
      // the guest's vif is the bridge's one port while it runs
      expect(ports!.output.trim()).toMatch(/^vif\d+\.0$/);
    });

    it(`answers ${PINGS} pings at 10 ms from dom0, none lost`, () => {
      expect(ping, "no ping: the ARP probe failed").toBeDefined();
      const m = /^(\d+) packets transmitted, (\d+) packets received, (\d+)% packet loss$/m.exec(ping!.output);
      expect(m, ping!.output).not.toBeNull();
      expect([Number(m![1]), Number(m![2])]).toEqual([PINGS, PINGS]);
      expect(ping!.output).toMatch(/^ping exit 0$/m);
      const rtt = /^round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms$/m.exec(ping!.output);
      expect(rtt, ping!.output).not.toBeNull();
      figures.push(`ping: ${PINGS} of ${PINGS}, round trip min/avg/max ${rtt![1]}/${rtt![2]}/${rtt![3]} ms`);
    });

    it("is in dom0's neighbour table at the MAC of its xl config", () => {
      expect(neigh?.output).toMatch(new RegExp(`^${IP_RX} dev xenbr0 lladdr ${MAC} `, "m"));
    });

    it(`echoes ${DATAGRAMS} UDP datagrams from dom0's stack intact, checksum offloaded both ways`, () => {
      expect(udp?.output.trim()).toBe(`udp: sent ${DATAGRAMS} echoed ${DATAGRAMS} intact ${DATAGRAMS} lost 0`);
      expect(udp!.status).toBe(0);
    });

    it("stops on the stop frame, reports what it served, and powers off with TEST PASS", () => {
      expect(stop.output.trim()).toBe(`stop: sent to ${MAC}`);
      expect(serve.outcome, summary(serve)).toBe("poweroff");
      expect(serve.verdict, summary(serve)).toBe("pass");
      const m =
        /^served: arp=(\d+) echo=(\d+) udp=(\d+) csum-blank=(\d+) bad=0 other=(\d+) rx=(\d+) tx=(\d+) rx-errors=0 send-errors=0$/m.exec(
          serve.console,
        );
      expect(m, serve.console).not.toBeNull();
      const [arps, echoes, udps, blank] = m!.slice(1, 5).map(Number);
      expect(arps).toBeGreaterThanOrEqual(1);
      expect(echoes).toBe(PINGS);
      expect(udps).toBe(DATAGRAMS);
      // dom0's UDP leaves through a bridge whose one port (the vif) offloads checksums
      expect(blank).toBe(DATAGRAMS);
      const t = /^timing: main ([\d.]+), ready ([\d.]+), first answer ([\d.]+) ms after entry$/m.exec(serve.console);
      expect(t, serve.console).not.toBeNull();
      figures.push(
        `nettest: guest entry -> main ${t![1]} ms, -> device ready ${t![2]} ms, -> first packet answered ${t![3]} ms (goal: <= 100 ms)`,
      );
      figures.push(`nettest: xl create ${serve.timings.createMs} ms; ${m![0]}`);
    });

    it("leaves no domain and no vif behind after poweroff", () => expectNothingLeft(after));

    it("destroyed while connected, it leaves no vif behind either", () => {
      expect(arp2.output).toMatch(new RegExp(`^arp: ${IP_RX} is at ${MAC2} after`, "m"));
      expect(destroy?.output, summary(destroyed)).toMatch(/^destroy exit 0$/m);
      // run-guest saw the domain go without a shutdown reason
      expect(destroyed.detail, summary(destroyed)).toMatch(/disappeared/);
      expectNothingLeft(after2);
    });
  });

  describe("lwIP (runtime/tcpip)", () => {
    it("netinfo gets a DHCP lease from dom0's udhcpd and prints it", () => {
      expect(dhcpd.output).toMatch(/^udhcpd running$/m);
      expect(netinfo.outcome, summary(netinfo)).toBe("poweroff");
      expect(netinfo.verdict, summary(netinfo)).toBe("pass");
      const m = new RegExp(`^netinfo: address (10\\.42\\.0\\.5\\d)/24 gateway 10\\.42\\.0\\.1 mac ${MAC3} mtu 1500 \\(dhcp\\)$`, "m").exec(
        netinfo.console,
      );
      expect(m, netinfo.console).not.toBeNull();
      // udhcpd's own record of the lease: that address to that MAC
      expect(leases.output).toMatch(new RegExp(`^${MAC3}\\s+${m![1].replace(/\./g, "\\.")}\\s`, "m"));
      figures.push(`netinfo: lease ${m![1]}, xl create -> result ${netinfo.timings.totalMs} ms`);
    });

    it(`echo sends back ${TCP_MIB} MiB over one TCP connection from dom0 with equal SHA-256`, () => {
      expect(input.output.trim()).toBe(String(TCP_MIB << 20));
      expect(arp4.output, summary(echo)).toMatch(new RegExp(`^arp: ${IP_RX} is at ${MAC4} after`, "m"));
      const m = /^tcp: sent (\d+) received (\d+) in (\d+) ms \(([\d.]+) Mbit\/s each way/m.exec(tcp?.output ?? "");
      expect(m, `${tcp?.output}\n${summary(echo)}`).not.toBeNull();
      expect([Number(m![1]), Number(m![2])]).toEqual([TCP_MIB << 20, TCP_MIB << 20]);
      const sums = section(tcp!.output, "sha256").map((l) => l.split(/\s+/));
      expect(sums.map((s) => s[1])).toEqual(["/tmp/tcp-in", "/tmp/tcp-out"]);
      expect(sums[1][0]).toBe(sums[0][0]);
      figures.push(`echo: ${TCP_MIB} MiB each way in ${m![3]} ms, ${m![4]} Mbit/s each way`);
    });

    it(`echo sends back ${DATAGRAMS} UDP datagrams intact`, () => {
      expect(udp4?.output.trim()).toBe(`udp: sent ${DATAGRAMS} echoed ${DATAGRAMS} intact ${DATAGRAMS} lost 0`);
    });

    it("echo stops on xl shutdown with nothing held", () => {
      expect(shutdown?.output).toMatch(/^shutdown exit 0$/m);
      expect(echo.outcome, summary(echo)).toBe("poweroff");
      expect(echo.console).toMatch(new RegExp(`^echo: ${IP_RX}/24 mac ${MAC4}: echoing TCP and UDP on port 7$`, "m"));
      expect(echo.console).toMatch(/^echo: connection from 10\.42\.0\.1:\d+$/m);
      expect(echo.console).toMatch(
        new RegExp(
          `^echo: poweroff: 1 connections, ${TCP_MIB << 20} bytes over TCP, ${DATAGRAMS} datagrams over UDP, 0 errors; ` +
            "held: 0 flows, 0 pbufs, 0 tcp pcbs, 0 pool pbufs$",
          "m",
        ),
      );
    });
  });
});
