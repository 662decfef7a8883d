/* Freestanding stand-in for <assert.h>: wasm2c's asserts are compiled out (NDEBUG). */
#ifndef SHIM_ASSERT_H
#define SHIM_ASSERT_H
#define assert(x) ((void)0)
#endif
