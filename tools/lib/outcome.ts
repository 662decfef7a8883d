// How a unikernel run ends, and the process exit code each outcome maps to.
// Shared by the harness (npm run dev) and the test bed (npm run boot), so a
// script sees the same code whichever host ran the guest.

export type Outcome =
  | "poweroff" // SHUTDOWN_poweroff, or _start returned
  | "crash" // SHUTDOWN_crash, a wasm trap, a CPU fault
  | "reboot" // SHUTDOWN_reboot
  | "watchdog" // SHUTDOWN_watchdog
  | "timeout" // the guest hung: no shutdown before the deadline (or a certain deadlock)
  | "create-failed" // xl create refused the image or its config
  | "testbed-failure" // Xen, dom0 or QEMU did not come up or died
  | "host-error"; // bad arguments, unknown app, malformed wasm, ABI violation

export const EXIT_CODE: Record<Outcome, number> = {
  poweroff: 0,
  "host-error": 1,
  crash: 2,
  reboot: 3,
  watchdog: 5,
  "create-failed": 6,
  timeout: 124,
  "testbed-failure": 125,
};
