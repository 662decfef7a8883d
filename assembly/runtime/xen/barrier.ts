// Memory barriers for shared memory (ABI.md §6). Wasm code runs on one thread
// against the host; the other side of a ring is another domain on another CPU.
// All three map to the mem_barrier import: in the shim a compiler barrier plus
// a CPU fence (mfence on x86-64); in the harness nothing, as its backends run
// inside the guest's import calls. The names say what the caller relies on.
import { mem_barrier } from "../abi";

/** Orders earlier loads and stores before later loads and stores. */
// @ts-ignore: decorator
@inline export function mb(): void {
  mem_barrier();
}

/** Orders earlier loads before later loads (e.g. an index before the data it covers). */
// @ts-ignore: decorator
@inline export function rmb(): void {
  mem_barrier();
}

/** Orders earlier stores before later stores (e.g. data before the index that publishes it). */
// @ts-ignore: decorator
@inline export function wmb(): void {
  mem_barrier();
}
