/* Exception and event entry stubs. Xen enters a 64-bit PV guest kernel on its current
 * stack with this frame, low to high: RCX, R11, [error code], RIP, CS, RFLAGS, RSP, SS
 * (xen/include/public/arch-x86/xen-x86_64.h). The stubs reload RCX and R11, give every
 * exception an error-code slot and a vector number, and save all registers as a
 * struct trap_frame (traps.c) for the C handler. */

#include "xen.h"   /* __HYPERVISOR_iret */

#define HYPERCALL_IRET (__HYPERVISOR_iret * 32)   /* its 32-byte stub in the hypercall page */

.macro SAVE_ALL
    pushq %rax; pushq %rbx; pushq %rcx; pushq %rdx; pushq %rsi; pushq %rdi; pushq %rbp
    pushq %r8; pushq %r9; pushq %r10; pushq %r11; pushq %r12; pushq %r13; pushq %r14; pushq %r15
.endm

/* vector, has_error_code */
.macro TRAP_ENTRY vec, err
    .globl trap_entry_\vec
trap_entry_\vec:
    movq (%rsp), %rcx
    movq 8(%rsp), %r11
    addq $16, %rsp
    .if \err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp trap_common
.endm

    .text
TRAP_ENTRY 0, 0     /* #DE divide error */
TRAP_ENTRY 1, 0     /* #DB debug */
TRAP_ENTRY 3, 0     /* #BP breakpoint */
TRAP_ENTRY 4, 0     /* #OF overflow */
TRAP_ENTRY 5, 0     /* #BR bound range */
TRAP_ENTRY 6, 0     /* #UD invalid opcode */
TRAP_ENTRY 7, 0     /* #NM device not available */
TRAP_ENTRY 8, 1     /* #DF double fault */
TRAP_ENTRY 10, 1    /* #TS invalid TSS */
TRAP_ENTRY 11, 1    /* #NP segment not present */
TRAP_ENTRY 12, 1    /* #SS stack fault */
TRAP_ENTRY 13, 1    /* #GP general protection */
TRAP_ENTRY 14, 1    /* #PF page fault */
TRAP_ENTRY 16, 0    /* #MF x87 error */
TRAP_ENTRY 17, 1    /* #AC alignment check */
TRAP_ENTRY 18, 0    /* #MC machine check */
TRAP_ENTRY 19, 0    /* #XM SIMD error */

/* Xen's failsafe callback (a bad segment on return to the guest): no error code. */
    .globl failsafe_entry
failsafe_entry:
    pushq $0
    pushq $255
    jmp trap_common

trap_common:
    SAVE_ALL
    movq %rsp, %rdi
    call trap_handler          /* never returns: every fault ends the domain */
    ud2

/* The event upcall: the frame has no error code. Save the caller-saved registers (the
 * C code preserves the rest), acknowledge events, then return through HYPERVISOR_iret,
 * which restores the interrupted RIP, RSP, RFLAGS and the upcall mask. */
    .globl evtchn_upcall_entry
evtchn_upcall_entry:
    movq (%rsp), %rcx
    movq 8(%rsp), %r11
    addq $16, %rsp
    pushq %rax; pushq %rcx; pushq %rdx; pushq %rsi; pushq %rdi
    pushq %r8; pushq %r9; pushq %r10; pushq %r11
    call evtchn_upcall
    popq %r11; popq %r10; popq %r9; popq %r8
    popq %rdi; popq %rsi; popq %rdx; popq %rcx; popq %rax
    pushq $0                   /* iret flags: not returning from a syscall */
    jmp hypercall_page + HYPERCALL_IRET

    .section .note.GNU-stack, "", @progbits
