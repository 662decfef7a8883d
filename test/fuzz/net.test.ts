// The seeded fuzzer (tools/fuzz, net-cases.ts) on the network path for a bounded time: a
// hostile netback (netif) and hostile frames into a running echo guest (frames) must each end
// in a clean success or a clear error: never a trap, a hang (the guest answers a ping and a
// fresh echo after the junk) or a leak (grants, pages, flows, pbufs, pcbs left behind).
// Longer runs: npm run fuzz -- --target netif --target frames --seconds N.
// MORGANA_FUZZ_SEED picks another session (each failure prints its replay command).
import { expect, test } from "vitest";
import { fuzz } from "../../tools/fuzz/engine.ts";
import { NET_TARGETS } from "../../tools/fuzz/cases.ts";
import { repairChecksums } from "../../tools/fuzz/net-cases.ts";
import { transportChecksumOk } from "../../tools/harness/netback.ts";
import * as F from "../net/frames.ts";

const SECONDS = 40; // 20 s per target; with the workers' start, under a minute
const seed = Number(process.env.MORGANA_FUZZ_SEED ?? 20261129);

test(`fuzz: hostile netback responses and keys, hostile frames for ${SECONDS} s (seed ${seed}): 0 traps, 0 hangs, 0 leaks`, async () => {
  const s = await fuzz({ seconds: SECONDS, seed, targets: NET_TARGETS, log: (l) => console.log(l) });
  expect(s.failures.map((f) => `${f.verdict}: ${f.target} seed ${f.seed}: ${f.what} — ${f.detail}`)).toEqual([]);
  const netif = s.perTarget.netif ?? {};
  const frames = s.perTarget.frames ?? {};
  // The hostile backend bites: some runs fail the device with a clear error, some pass.
  expect(netif["clear-error"] ?? 0, JSON.stringify(netif)).toBeGreaterThanOrEqual(20);
  expect(netif.ok ?? 0, JSON.stringify(netif)).toBeGreaterThanOrEqual(10);
  // Junk frames never stop the guest: every run answers the final ping and echo with nothing held.
  expect(frames.ok ?? 0, JSON.stringify(frames)).toBeGreaterThanOrEqual(8);
}, 120_000);

test("repairChecksums makes a mutated TCP frame's IPv4 header and TCP checksums verify again", () => {
  const seg = F.tcp("10.0.0.1", "10.0.0.2", 1234, 7, 1, 2, F.TCP_SYN, 1000, new Uint8Array());
  const f = F.ethernet(F.BROADCAST, F.BROADCAST, F.ETH_IP, F.ipv4("10.0.0.1", "10.0.0.2", F.IP_TCP, seg));
  f[14 + 20 + 4] ^= 0x40; // the sequence number
  f[14 + 8] = 3; // the TTL
  expect(transportChecksumOk(f)).toBe(false);
  expect(F.parseIpv4(f.subarray(14)).headerOk).toBe(false);
  repairChecksums(f);
  expect(transportChecksumOk(f)).toBe(true);
  expect(F.parseIpv4(f.subarray(14)).headerOk).toBe(true);
});
