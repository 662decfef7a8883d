/* PV entry: the Xen ELF notes, the entry point, the hypercall page and the boot stack.
 * Xen starts us in 64-bit mode, ring 3 (guest kernel), events masked, on a small boot
 * stack inside the start-of-day mapping, with %rsi = VA of start_info. */

#include "xen.h"      /* XEN_ELFNOTE_* */
#include "layout.h"   /* VIRT_BASE */

#define STACK_SIZE (512 * 1024)

/* One note: namesz, descsz, type, "Xen\0", desc, each 4-byte aligned. */
#define ELFNOTE(type, desctype, descdata)  \
    .pushsection .note.Xen, "a", @note;    \
    .p2align 2;                            \
    .long 2f - 1f; .long 4f - 3f; .long type; \
1:  .asciz "Xen";                          \
2:  .p2align 2;                            \
3:  desctype descdata;                     \
4:  .p2align 2;                            \
    .popsection

ELFNOTE(XEN_ELFNOTE_GUEST_OS,       .asciz, "Morgana")
ELFNOTE(XEN_ELFNOTE_GUEST_VERSION,  .asciz, "0.1")
ELFNOTE(XEN_ELFNOTE_XEN_VERSION,    .asciz, "xen-3.0")
ELFNOTE(XEN_ELFNOTE_LOADER,         .asciz, "generic")
ELFNOTE(XEN_ELFNOTE_VIRT_BASE,      .quad,  VIRT_BASE)
ELFNOTE(XEN_ELFNOTE_PADDR_OFFSET,   .quad,  VIRT_BASE)
ELFNOTE(XEN_ELFNOTE_ENTRY,          .quad,  _start)
ELFNOTE(XEN_ELFNOTE_HYPERCALL_PAGE, .quad,  hypercall_page)
/* We write page tables only through mmu_update: no writable_page_tables assist. */
ELFNOTE(XEN_ELFNOTE_FEATURES,       .asciz, "!writable_page_tables")

    .section .text.head, "ax"
    .code64
    /* Xen fills this page with hypercall stubs, 32 bytes each. First in the image, so
     * that its page alignment costs no padding. */
    .p2align 12
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .globl _start
_start:
    rdtsc                           /* the entry time, converted once the PV clock is mapped */
    shlq $32, %rdx
    orq %rax, %rdx                  /* %rdx = entry TSC (3rd argument) */
    movq %rsp, %r8                  /* Xen's boot stack: it tells where the boot frames end */
    cld
    leaq stack_top(%rip), %rsp
    xorl %ebp, %ebp                 /* a zero frame pointer ends the stack walk */
    movq %rsi, %rdi                 /* 1st argument: start_info */
    movq %r8, %rsi                  /* 2nd argument: Xen's boot %rsp */
    call shim_main
    ud2                             /* shim_main never returns */

    /* The stack, with an unmapped guard page below it (mm_protect_image unmaps it). */
    .section .bss.stack, "aw", @nobits
    .p2align 12
    .globl stack_guard, stack_bottom, stack_top
stack_guard:
    .skip 4096
stack_bottom:
    .skip STACK_SIZE
stack_top:

    .section .note.GNU-stack, "", @progbits
