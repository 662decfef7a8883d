/* Freestanding stand-in for <stdlib.h>: wasm-rt.h only needs it to exist. */
#ifndef SHIM_STDLIB_H
#define SHIM_STDLIB_H
#include <stddef.h>
#endif
