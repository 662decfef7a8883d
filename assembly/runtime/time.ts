// Clocks and sleeping (ABI.md §3.2–3.4). All times are nanoseconds in i64.
import { clock_monotonic, clock_wall, block } from "./abi";

export const NS_PER_US: i64 = 1_000;
export const NS_PER_MS: i64 = 1_000_000;
export const NS_PER_S: i64 = 1_000_000_000;

/** Nanoseconds since boot; never decreases. */
export function monotonic(): i64 {
  return clock_monotonic();
}

/** Nanoseconds since 1970-01-01T00:00:00Z. */
export function wall(): i64 {
  return clock_wall();
}

/** Blocks the whole domain until `deadline` (monotonic ns), ignoring events. */
export function sleepUntil(deadline: i64): void {
  // block() may wake early for an event or spuriously: re-check each time.
  while (clock_monotonic() < deadline) block(deadline);
}

/** Blocks the whole domain for `ns` nanoseconds. */
export function sleep(ns: i64): void {
  sleepUntil(clock_monotonic() + ns);
}
