/* Traps: the trap table, CPU faults, and the wasm trap report of ABI.md §4.
 *
 * Symbolised wasm stacks: the wasm code is compiled with frame pointers, so from the
 * trapping frame the RBP chain gives every caller's return address. The build links
 * the image twice: the second link adds .wasm_syms, a table of (start address, name)
 * of every function in the wasm code sorted by address, made from the first link's
 * symbols and the module's name section; .wasm_syms lies after all code, so no code
 * address moves between the two links (the build checks that). */
#include "shim.h"
#include "hypercall.h"

#define MAX_FRAMES 32          /* ABI.md §4: a host MAY stop after 32 frames */
#define NO_NAME    0xffffffffu /* a symbol in the wasm text that is no wasm function */

/* As pushed by entry.S, low to high. */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

/* The table the build generates (tools/lib/image-syms.ts). */
struct wasm_sym {
    uint64_t addr;
    uint32_t name;
    uint32_t pad;
};
extern const struct wasm_sym wasm_syms[];
extern const uint64_t wasm_syms_count;
extern const char wasm_sym_names[];
extern char wasm_text_start[], wasm_text_end[], stack_bottom[], stack_top[];

extern void trap_entry_0(void), trap_entry_1(void), trap_entry_3(void), trap_entry_4(void),
    trap_entry_5(void), trap_entry_6(void), trap_entry_7(void), trap_entry_8(void), trap_entry_10(void),
    trap_entry_11(void), trap_entry_12(void), trap_entry_13(void), trap_entry_14(void), trap_entry_16(void),
    trap_entry_17(void), trap_entry_18(void), trap_entry_19(void), failsafe_entry(void),
    evtchn_upcall_entry(void);

/* Privilege 0 (a guest int $n cannot reach them); events masked inside handlers. */
/* Kept on one line: clang-format would spread the braced body over four. */
/* clang-format off */
#define TRAP(vec, fn) { vec, TI_MASK_EVENTS, FLAT_KERNEL_CS64, (uint64_t)fn }
/* clang-format on */
static const struct trap_info trap_table[] = {
    TRAP(0, trap_entry_0),   TRAP(1, trap_entry_1),   TRAP(3, trap_entry_3),   TRAP(4, trap_entry_4),
    TRAP(5, trap_entry_5),   TRAP(6, trap_entry_6),   TRAP(7, trap_entry_7),   TRAP(8, trap_entry_8),
    TRAP(10, trap_entry_10), TRAP(11, trap_entry_11), TRAP(12, trap_entry_12), TRAP(13, trap_entry_13),
    TRAP(14, trap_entry_14), TRAP(16, trap_entry_16), TRAP(17, trap_entry_17), TRAP(18, trap_entry_18),
    TRAP(19, trap_entry_19), { 0, 0, 0, 0 }, /* terminator: a zero address */
};

static const char *const exception_names[20] = {
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor overrun",
    "invalid TSS",
    "segment not present",
    "stack fault",
    "general protection fault",
    "page fault",
    "reserved",
    "x87 floating-point error",
    "alignment check",
    "machine check",
    "SIMD floating-point error",
};

void traps_init(void)
{
    long rc = hypervisor_set_trap_table(trap_table);
    if (rc) shim_fatal("set_trap_table", rc);
    rc = hypervisor_set_callbacks(evtchn_upcall_entry, failsafe_entry);
    if (rc) shim_fatal("set_callbacks", rc);
}

static int in_wasm_text(uint64_t pc)
{
    return pc >= (uint64_t)wasm_text_start && pc < (uint64_t)wasm_text_end;
}

/* The wasm name of the function holding pc, or 0 when pc is in no wasm function. */
static const char *wasm_symbolise(uint64_t pc)
{
    uint64_t lo = 0, hi = wasm_syms_count; /* find the last entry with addr <= pc */
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (wasm_syms[mid].addr <= pc) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0 || wasm_syms[lo - 1].name == NO_NAME) return 0;
    return wasm_sym_names + wasm_syms[lo - 1].name;
}

static int print_frame(uint64_t pc, int *n)
{
    const char *name = wasm_symbolise(pc);
    if (!name) return 0;
    if (*n == MAX_FRAMES) {
        printk("  ...\n");
        return 0;
    }
    printk("  at %s\n", name);
    ++*n;
    return 1;
}

/* ABI.md §4: flush, "TRAP: <reason>", the wasm frames innermost first, crash.
 * pc is the trapping instruction (or 0 when rbp is the trapping frame's own). */
NORETURN void trap_wasm(const char *reason, uint64_t pc, uint64_t rbp)
{
    console_flush();
    printk("TRAP: %s\n", reason);
    int n = 0;
    if (!pc || print_frame(pc, &n)) {
        /* Each frame: [rbp] = the caller's rbp, [rbp + 8] = the return address. The
         * chain must climb the stack; a return address is looked up at ret - 1, inside
         * the call instruction (a noreturn call may end its function). */
        while (rbp >= (uint64_t)stack_bottom && rbp + 16 <= (uint64_t)stack_top && !(rbp & 7)) {
            uint64_t *frame = (uint64_t *)rbp;
            if (!in_wasm_text(frame[1] - 1) || !print_frame(frame[1] - 1, &n)) break;
            if (frame[0] <= rbp) break;
            rbp = frame[0];
        }
    }
    shim_shutdown(SHUTDOWN_crash);
}

static NORETURN void trap_fatal(struct trap_frame *f, uint64_t cr2)
{
    console_flush();
    const char *name = f->vector < 20     ? exception_names[f->vector]
                       : f->vector == 255 ? "failsafe callback"
                                          : "unknown exception";
    printk("FATAL: %s (vector %u, error %lx) at rip %016lx", name, (unsigned)f->vector, f->error, f->rip);
    if (f->vector == 14) printk(", address %016lx%s", cr2, mm_in_stack_guard(cr2) ? " (stack overflow)" : "");
    printk("\n");
    printk("  rax %016lx rbx %016lx rcx %016lx rdx %016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
    printk("  rsi %016lx rdi %016lx rbp %016lx rsp %016lx\n", f->rsi, f->rdi, f->rbp, f->rsp);
    printk("  r8  %016lx r9  %016lx r10 %016lx r11 %016lx\n", f->r8, f->r9, f->r10, f->r11);
    printk("  r12 %016lx r13 %016lx r14 %016lx r15 %016lx\n", f->r12, f->r13, f->r14, f->r15);
    printk("  rflags %016lx cs %lx ss %lx\n", f->rflags, f->cs & 0xffff, f->ss);
    shim_shutdown(SHUTDOWN_crash);
}

/* Every CPU fault ends here. In wasm code, a page fault inside the linear memory's
 * reservation is an out-of-bounds access and #DE a division trap; the rest is fatal. */
void trap_handler(struct trap_frame *f)
{
    uint64_t cr2 = shared_info ? shared_info->vcpu_info[0].arch.cr2 : 0;
    if (in_wasm_text(f->rip)) {
        /* error bit 0 clear: nothing mapped there (beyond memory.size); set: a write to a
         * read-only grant mapping, which ABI.md §9.3 makes a CPU fault */
        if (f->vector == 14 && mm_in_linear_reservation(cr2) && !(f->error & 1))
            trap_wasm("out of bounds memory access", f->rip, f->rbp);
        if (f->vector == 0) trap_wasm("integer divide by zero", f->rip, f->rbp);
    }
    trap_fatal(f, cr2);
}
