/* Freestanding stand-in for <alloca.h>. */
#ifndef SHIM_ALLOCA_H
#define SHIM_ALLOCA_H
#define alloca __builtin_alloca
#endif
