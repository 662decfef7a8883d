/* Where the image lives, for the C code and the assembly files alike (no C here).
 * Xen maps pfn N of the domain at VIRT_BASE + N * 4096 (head.S's ELF notes say so);
 * kernel.ld, which the C preprocessor does not read, repeats the number. */
#ifndef SHIM_LAYOUT_H
#define SHIM_LAYOUT_H

/* In C the literal is an unsigned long: it does not fit a long. */
#define VIRT_BASE 0xffffffff80000000

#endif
