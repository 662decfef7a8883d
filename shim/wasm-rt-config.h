/* How the shim configures wasm2c 1.0.32's output (forced in with -include before the
 * generated code and the system's wasm-rt.h).
 * - Guard pages instead of bounds checks: the linear memory's whole reach is reserved
 *   and unmapped beyond memory.size (mm.c), so loads and stores carry no checks.
 * - Stack exhaustion: wasm2c turns its call-depth counter off in guard-page mode, and a
 *   PV guest cannot survive a fault on its stack guard (Xen kills the domain before any
 *   handler runs). So the counter is switched back on and its limit turned into a
 *   stack-pointer check: the prologue's `++depth > LIMIT` traps when LIMIT is 0, that
 *   is, when the frame lies below wasm_rt_stack_limit; otherwise LIMIT is the largest
 *   u32 and the comparison never holds. */
#ifndef SHIM_WASM_RT_CONFIG_H
#define SHIM_WASM_RT_CONFIG_H
#include <stdint.h>
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 1
#define WASM_RT_USE_STACK_DEPTH_COUNT   1
extern uintptr_t wasm_rt_stack_limit;
#define WASM_RT_MAX_CALL_STACK_DEPTH \
    ((uintptr_t)__builtin_frame_address(0) < wasm_rt_stack_limit ? 0u : 0xffffffffu)
#endif
