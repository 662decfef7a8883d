/* lwIP's platform header for Morgana: wasm32, freestanding (clang-14 -ffreestanding
 * -nostdinc; clang's stddef/stdint/limits plus sqlite/include's string.h). Read by
 * lwIP's lwip/arch.h. */
#ifndef MORGANA_LWIP_ARCH_CC_H
#define MORGANA_LWIP_ARCH_CC_H

/* wasm32 is little-endian. */
#define BYTE_ORDER LITTLE_ENDIAN

/* No libc ctype: lwIP's own character macros. */
#define LWIP_NO_CTYPE_H 1

/* No printf exists: diagnostics are compiled out (LWIP_DEBUG is never defined). */
#define LWIP_PLATFORM_DIAG(x) do { } while (0)

/* Assertions are compiled out (LWIP_NOASSERT in lwipopts.h): LWIP_ERROR checks on API
 * arguments still run their handlers and return ERR_ARG. */
#define LWIP_PLATFORM_ASSERT(x) do { } while (0)

/* Randomness: the runtime fills it from the ABI's entropy_fill (lwip/glue.c). */
unsigned int morgana_lwip_rand(void);
#define LWIP_RAND() ((u32_t)morgana_lwip_rand())

#endif
