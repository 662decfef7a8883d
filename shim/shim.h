/* Interfaces between the shim's layers. One file per concern:
 *   main.c     boot sequence, shutdown          console.c  PV console ring, printk
 *   time.c     PV clock, one-shot timer, block  evtchn.c   event channels and the upcall
 *   mm.c       memory layout, W^X, linear memory traps.c    trap table, faults, trap reports
 *   wasm_rt.c  wasm2c's runtime contract        abi.c      the import ABI (ABI.md §3, §6-9)
 *   gnttab.c   grant tables v1 (ABI.md §9)
 *   lib.c      mem*, str*                       math.c     libm subset for wasm2c output */
#ifndef SHIM_H
#define SHIM_H

#include <stddef.h>
#include <stdint.h>
#include "xen.h"
#include "layout.h"

#define PAGE_SIZE 4096UL
#define NORETURN  __attribute__((noreturn))

/* Compiler barrier: x86 keeps stores in order and loads in order (TSO), so between
 * us and Xen or a backend only the compiler's reordering has to be stopped. */
#define barrier() asm volatile("" ::: "memory")

/* A full fence for the module's mem_barrier: orders every earlier load and store
 * before every later one, as other domains see them. */
#define mfence() asm volatile("mfence" ::: "memory")

/* main.c */
extern struct start_info *start_info;
extern struct shared_info *shared_info;
NORETURN void shim_shutdown(unsigned reason);
NORETURN void shim_fatal(const char *what, long rc);

/* console.c */
void console_init(void);
void console_ring_write(const char *buf, size_t len);
void console_flush(void);
void printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* time.c */
extern uint64_t boot_ns;
void pvclock_init(uint64_t entry_tsc);
uint64_t pvclock_monotonic(void);
uint64_t pvclock_wall(void);
int sched_block(int64_t deadline);

/* evtchn.c (the module's calls return a port, 0 or -errno: ABI.md §8) */
void evtchn_init(void);
long evtchn_send(uint32_t port);
uint32_t evtchn_bind_virq(uint32_t virq);
void evtchn_upcall(void);
void evtchn_ack(void);
void evtchn_mask_upcalls(void);
int evtchn_event_pending(void);
int evtchn_alloc_unbound(uint32_t remote_domid);
int evtchn_bind_interdomain(uint32_t remote_domid, uint32_t remote_port);
int evtchn_notify(uint32_t port);
int evtchn_mask(uint32_t port);
int evtchn_unmask(uint32_t port);
int evtchn_close(uint32_t port);
int evtchn_poll(uint32_t *out, uint32_t max);
extern volatile int evtchn_event_seen;
extern uint16_t evtchn_self_domid;

/* gnttab.c (ABI.md §9; offsets are linear-memory addresses) */
int xen_domain_exists(uint32_t domid);
int gnttab_grant_access(uint32_t domid, uint32_t offset, int readonly);
int gnttab_end_access(uint32_t ref);
int gnttab_map(uint32_t domid, uint32_t ref, uint32_t offset, int readonly);
int gnttab_unmap(uint32_t handle);
int gnttab_page_mapped(uint32_t offset);

/* mm.c */
struct shared_info *mm_map_shared_info(void);
void mm_init(uint64_t boot_rsp);
uint8_t *mm_linear_base(void);
int mm_linear_grow(uint32_t old_pages, uint32_t new_pages);
uint64_t mm_free_bytes(void);
int mm_in_linear_reservation(uint64_t va);
int mm_in_stack_guard(uint64_t va);
uint64_t mm_pfn_to_mfn(uint64_t pfn);
void *mm_mfn_to_virt(uint64_t mfn);
uint64_t mm_linear_own_mfn(uint32_t offset);
long mm_linear_remap(uint32_t offset, uint64_t mfn);
void *mm_io_map(unsigned idx, uint64_t mfn);

/* abi.c */
extern int64_t abi_store_ring_offset; /* where store_ring_map put the ring, or -1 */

/* traps.c */
void traps_init(void);
NORETURN void trap_wasm(const char *reason, uint64_t pc, uint64_t rbp);

/* wasm_rt.c */
extern uint8_t *wasm_memory_data;
extern uint32_t wasm_memory_size;

/* the per-app glue (app.c, compiled against the generated header) */
void app_run(void);

/* lib.c */
size_t strlen(const char *s);

#endif
