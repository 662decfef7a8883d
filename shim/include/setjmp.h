/* Freestanding stand-in for <setjmp.h>: wasm-rt.h names jmp_buf in prototypes the shim
 * never implements (a trap ends the domain, nothing unwinds). */
#ifndef SHIM_SETJMP_H
#define SHIM_SETJMP_H
typedef long jmp_buf[8];
#endif
