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

/**
 * A backend's xenbus side misbehaving, for tests of the frontend's deadlines and
 * strict parsing. Each one is something a broken or hostile backend can do.
 */
export interface XenbusFaults {
  /** Stay in Initialising: never offer InitWait. */
  stayInitialising?: boolean;
  /** Stay in InitWait: ignore the frontend's Initialised, never connect. */
  neverConnect?: boolean;
  /** Write this as the state instead of Connected's "4" ("99", "4x", ""). */
  connectedState?: string;
  /** Ignore the frontend's Closing and Closed: never close, never unmap the ring. */
  neverClose?: boolean;
  /**
   * Leave Connected instead of answering request n (counted from 0 in execution
   * order): write leaveWith ("5" Closing by default), or with null remove the state node.
   */
  leaveAt?: number;
  leaveWith?: string | null;
}
