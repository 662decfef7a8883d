/* Our freestanding implementation of wasm2c's runtime contract (/usr/include/wasm-rt.h,
 * wabt 1.0.32) for the app's module instance and, when it links SQLite, the SQLite
 * module's (shim/app.c): the one memory lives at the fixed linear-memory address (mm.c)
 * and is allocated once (by SQLite's module when there is one: the app imports it),
 * tables come from a static arena, function types are registered in one list shared by
 * both modules (equal signatures, equal indices), and a trap ends the domain with a
 * report. Sizes: SQLite 3.53 has 52 function types and a 292-entry table; apps have
 * tens of types and tables of tens of entries. */
#include <stdarg.h>
#include "wasm-rt-config.h"
#include "wasm-rt.h"
#include "shim.h"

#define MAX_PAGES           65535u      /* the u32 size field cannot hold 65536 * 64 KiB */
#define TABLE_ARENA_ENTRIES 4096        /* funcref and externref elements, all tables of all modules */
#define MAX_FUNC_TYPES      512         /* distinct signatures, all modules */
#define TYPE_ARENA          8192        /* bytes of encoded signatures */
#define STACK_RESERVE       (64 * 1024) /* stack kept for the trap report and imports */

extern char stack_bottom[];
uint32_t wasm_rt_call_stack_depth; /* counted but unused: see wasm-rt-config.h */
uintptr_t wasm_rt_stack_limit = (uintptr_t)stack_bottom + STACK_RESERVE;

uint8_t *wasm_memory_data; /* the single memory, for the imports (abi.c) */
uint32_t wasm_memory_size;

void wasm_rt_init(void) {}
bool wasm_rt_is_initialized(void) { return true; }
void wasm_rt_free(void) {}

static const char *trap_reason(wasm_rt_trap_t code)
{
    switch (code) {
    case WASM_RT_TRAP_OOB: return "out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE: return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call type mismatch";
    case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
    default: return "unknown trap";
    }
}

const char *wasm_rt_strerror(wasm_rt_trap_t code) { return trap_reason(code); }

/* noinline: the walk starts from this function's own frame, whose caller trapped. */
__attribute__((noinline)) void wasm_rt_trap(wasm_rt_trap_t code)
{
    trap_wasm(trap_reason(code), 0, (uint64_t)__builtin_frame_address(0));
}

/* Function types: equal signatures get equal indices (call_indirect compares them).
 * A signature is stored as its bytes: params, results, then one byte per type. */
static uint8_t type_arena[TYPE_ARENA];
static uint32_t type_start[MAX_FUNC_TYPES + 1];
static uint32_t type_count;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
    uint32_t len = 2 + params + results, at = type_start[type_count];
    if (params > 255 || results > 255 || type_count == MAX_FUNC_TYPES || at + len > TYPE_ARENA)
        shim_fatal("wasm_rt_register_func_type: too many or too large function types", -XEN_EINVAL);
    uint8_t *sig = type_arena + at;
    va_list ap;
    va_start(ap, results);
    sig[0] = params;
    sig[1] = results;
    for (uint32_t i = 0; i < params + results; i++) sig[2 + i] = (uint8_t)va_arg(ap, int);
    va_end(ap);
    for (uint32_t t = 0; t < type_count; t++)
        if (type_start[t + 1] - type_start[t] == len && !memcmp(type_arena + type_start[t], sig, len))
            return t;
    type_start[++type_count] = at + len;
    return type_count - 1;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial, uint32_t max)
{
    if (wasm_memory_data) shim_fatal("a second wasm memory (one is supported)", -XEN_EINVAL);
    if (max > MAX_PAGES) max = MAX_PAGES;
    if (initial > max || mm_linear_grow(0, initial))
        shim_fatal("mapping the initial wasm memory (not enough memory for the domain?)", -12);
    mem->data = mm_linear_base();
    mem->pages = initial;
    mem->max_pages = max;
    mem->size = initial * 65536u;
    wasm_memory_data = mem->data;
    wasm_memory_size = mem->size;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
    uint32_t old = mem->pages;
    if (delta > mem->max_pages - old || mm_linear_grow(old, old + delta)) return UINT32_MAX;
    mem->pages = old + delta;
    mem->size = mem->pages * 65536u;
    wasm_memory_size = mem->size;
    return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem) { (void)mem; }

/* Tables: carved from one arena for the life of the domain; they never grow. */
static uint64_t table_arena[TABLE_ARENA_ENTRIES * 3];
static uint32_t table_used; /* in uint64_t units */

static void *table_alloc(uint32_t elements, uint32_t words_each)
{
    uint64_t words = (uint64_t)elements * words_each;
    if (words > sizeof(table_arena) / 8 - table_used) shim_fatal("allocating a wasm table", -12);
    void *p = table_arena + table_used;
    table_used += words;
    return p; /* zero: null references */
}

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *t, uint32_t elements, uint32_t max)
{
    t->data = table_alloc(elements, sizeof(wasm_rt_funcref_t) / 8);
    t->size = elements;
    t->max_size = max;
}

void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *t, uint32_t elements, uint32_t max)
{
    t->data = table_alloc(elements, 1);
    t->size = elements;
    t->max_size = max;
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *t) { (void)t; }
void wasm_rt_free_externref_table(wasm_rt_externref_table_t *t) { (void)t; }

uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *t, uint32_t d, wasm_rt_funcref_t v)
{
    return UINT32_MAX;
} /* tables never grow */
uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *t, uint32_t d, wasm_rt_externref_t v)
{
    return UINT32_MAX;
} /* tables never grow */
