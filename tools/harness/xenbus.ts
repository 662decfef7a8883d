// What the toolstack (libxl) writes in xenstore for a PV device before the guest
// starts, shared by the harness's backends. States from io/xenbus.h.
import type { Xenstored } from "./xenstored.ts";

/** enum xenbus_state (xen/include/public/io/xenbus.h). */
export const XenbusState = { Initialising: 1, InitWait: 2, Initialised: 3, Connected: 4, Closing: 5, Closed: 6 } as const;

/**
 * Creates the frontend and backend nodes of a device of domain `domid`, each
 * owned by its side and readable by the other, linked to each other, with the
 * frontend in Initialising. Device-specific keys are the caller's.
 */
export function toolstackDevice(xs: Xenstored, domid: number, frontend: string, backend: string): void {
  xs.write(frontend, "");
  xs.setPerms(frontend, [`n${domid}`, "r0"]);
  xs.write(`${frontend}/backend`, backend);
  xs.write(`${frontend}/backend-id`, "0");
  xs.write(`${frontend}/state`, String(XenbusState.Initialising));
  xs.setPerms(`${frontend}/state`, [`n${domid}`, "r0"]);
  xs.write(backend, "");
  xs.setPerms(backend, ["n0", `r${domid}`]);
  xs.write(`${backend}/frontend`, frontend);
  xs.write(`${backend}/frontend-id`, String(domid));
}
