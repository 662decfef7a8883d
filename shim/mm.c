/* Memory: the virtual layout, W^X for the image, the free frame pool, and the wasm
 * linear memory at a fixed address with its whole reach reserved, so that the AOT code
 * needs no bounds checks: an access beyond memory.size hits an unmapped page, and the
 * page-fault handler turns it into the wasm trap "out of bounds memory access".
 *
 * Virtual layout (x86_64 PV, 48-bit canonical addresses):
 *
 *  0x0000000000000000 +----------------------------------------------+
 *                     | unmapped: a null or small pointer faults     |
 *  0xffff800000000000 +----------------------------------------------+ L4 slots 256-271
 *                     | Xen (its M2P table is readable at the start) |
 *  0xffff880000000000 +----------------------------------------------+
 *                     | unused                                       |
 *  0xffffa00000000000 +----------------------------------------------+ LINEAR_BASE, L4 slot 320
 *                     | wasm linear memory, RW NX: memory.size bytes |
 *                     | mapped from the free frame pool              |
 *                     |..............................................|
 *                     | never mapped: the rest of the 8 GiB that     |
 *                     | wasm2c's u32 address + u32 offset can reach, |
 *                     | and the rest of the 512 GiB slot as a guard  |
 *  0xffffa08000000000 +----------------------------------------------+
 *                     | unused                                       |
 *  0xffffc00000000000 +----------------------------------------------+ IO_BASE, L4 slot 384
 *                     | shim I/O pages, RW NX: the grant table frames|
 *                     | (gnttab.c), one L1 made on first use         |
 *  0xffffc08000000000 +----------------------------------------------+
 *                     | unused                                       |
 *  0xffffffff80000000 +----------------------------------------------+ VIRT_BASE = pfn 0
 *                     | .text   R X  boot code, hypercall page, wasm |
 *                     |              code, shim code                 |
 *                     | .rodata R    constants, Xen notes, wasm      |
 *                     |              symbol table                    |
 *                     | .data   RW   shim data, shared_info page,    |
 *                     | .bss         guard page (unmapped), stack    |
 *                     | Xen's start-of-day area, RW (page tables R): |
 *                     |   p2m list, start_info, xenstore and console |
 *                     |   rings, initial page tables, boot stack     |
 *                     | free frames inside the boot mapping, RW      |
 *  + boot_map_pages   +----------------------------------------------+
 *                     | unmapped: the rest of the domain's frames    |
 *                     | (the free pool) are mapped only where needed |
 *  0xffffffffffffffff +----------------------------------------------+
 *
 * Everything below VIRT_BASE except Xen's range is ours; everything above _erodata is
 * NX. Free frames: pfns from the end of Xen's start-of-day area to nr_pages. Data
 * frames come from the bottom of the pool, page-table frames from the top (those are
 * outside the boot mapping, so they have no writable mapping Xen would refuse).
 *
 * Remapping (ABI.md §6.1): every 4 KiB page of the linear memory has its own PTE, so
 * the store ring (store_ring_map) and foreign grants (gnttab_map) replace one page's PTE;
 * the page's own frame stays allocated to it. Linear page k is always pfn
 * linear_first_pfn + k (only memory.grow takes from the bottom of the pool), so its own
 * frame is known without reading the L1, and gnttab_unmap restores it. */
#include <string.h>
#include "shim.h"
#include "hypercall.h"

#define LINEAR_BASE    0xffffa00000000000UL
#define LINEAR_RESERVE (512UL << 30)        /* the whole L4 slot */
#define IO_BASE        0xffffc00000000000UL /* reserved for grant mappings */
#define L4_SLOT(va)    (((va) >> 39) & 511)
#define M2P            ((const uint64_t *)MACH2PHYS_VIRT_START)
#define TABLE_PROT     (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)
#define DATA_PROT      (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)
#define BATCH          64 /* mmu_update entries per hypercall */

extern char _etext[], _erodata[], _end[], stack_guard[];

static uint64_t *p2m;                /* pfn -> mfn (start_info.mfn_list) */
static uint64_t boot_map_pages;      /* pfns [0, boot_map_pages) are mapped at VIRT_BASE */
static uint64_t pool_next, pool_top; /* free pfns: [pool_next, pool_top) */
static uint64_t nx;                  /* PTE_NX when the CPU has it, else 0 */
static uint64_t linear_l3_mfn;
static uint64_t linear_l2_mfn[4];    /* one per GiB: at most 65535 wasm pages */
static uint64_t linear_l1_mfn[2048]; /* one per 2 MiB */
static uint64_t linear_first_pfn;    /* the frame of linear page 0; page k is pfn + k */
static uint64_t l4_maddr;
static uint64_t io_l1_mfn; /* the I/O region's one L1: 512 pages */

static struct mmu_update mmu_batch[BATCH];
static unsigned mmu_batch_len;

uint64_t mm_pfn_to_mfn(uint64_t pfn) { return p2m[pfn]; }
void *mm_mfn_to_virt(uint64_t mfn) { return (void *)(VIRT_BASE + (M2P[mfn] << 12)); }
static uint64_t *pte_table(uint64_t pte) { return mm_mfn_to_virt((pte & PTE_ADDR) >> 12); }
static uint64_t virt_to_pfn(const void *va) { return ((uint64_t)va - VIRT_BASE) >> 12; }

uint8_t *mm_linear_base(void) { return (uint8_t *)LINEAR_BASE; }
uint64_t mm_free_bytes(void) { return (pool_top - pool_next) * PAGE_SIZE; }
int mm_in_linear_reservation(uint64_t va) { return va - LINEAR_BASE < LINEAR_RESERVE; }
int mm_in_stack_guard(uint64_t va) { return va - (uint64_t)stack_guard < PAGE_SIZE; }

static void mmu_flush(const char *what)
{
    if (!mmu_batch_len) return;
    long rc = hypervisor_mmu_update(mmu_batch, mmu_batch_len);
    if (rc) shim_fatal(what, rc);
    mmu_batch_len = 0;
}

static void mmu_queue(uint64_t pte_maddr, uint64_t val, const char *what)
{
    mmu_batch[mmu_batch_len++] = (struct mmu_update){ pte_maddr | MMU_NORMAL_PT_UPDATE, val };
    if (mmu_batch_len == BATCH) mmu_flush(what);
}

/* Maps the shared info page (given as a machine address) over a page of our .bss. */
static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
struct shared_info *mm_map_shared_info(void)
{
    long rc = hypervisor_update_va_mapping(
        (uint64_t)shared_info_page, start_info->shared_info | PTE_P | PTE_RW | PTE_A | PTE_D, UVMF_INVLPG);
    if (rc) shim_fatal("update_va_mapping of the shared info page", rc);
    return (struct shared_info *)shared_info_page;
}

/* W^X over the boot mapping: text read-only and executable, rodata read-only, the
 * rest non-executable; the stack's guard page unmapped. Xen mapped it all RWX.
 * A 2 MiB chunk holding neither code nor the guard page gets NX in its L2 entry, which
 * covers its 512 pages at once (each PTE update costs Xen a validation). */
static void mm_protect_image(uint64_t *l2, uint64_t l2_maddr)
{
    const char *what = "mmu_update for W^X on the image";
    for (uint64_t j = 0; j < boot_map_pages / 512; j++) {
        uint64_t chunk = VIRT_BASE + (j << 21);
        if (chunk >= (uint64_t)_erodata && (uint64_t)stack_guard - chunk >= (1UL << 21)) {
            if (nx) mmu_queue(l2_maddr + j * 8, l2[j] | nx, what);
            continue;
        }
        uint64_t *l1 = pte_table(l2[j]);
        uint64_t l1_maddr = l2[j] & PTE_ADDR;
        for (uint64_t i = 0; i < 512; i++) {
            uint64_t pte = l1[i], new = pte;
            uint64_t va = chunk + (i << 12);
            if (!(pte & PTE_P)) continue;
            if (va < (uint64_t)_etext) new &= ~PTE_RW;
            else new = (va < (uint64_t)_erodata ? new & ~PTE_RW : new) | nx;
            if (va == (uint64_t)stack_guard) new = 0;
            if (new != pte) mmu_queue(l1_maddr + i * 8, new, what);
        }
    }
    mmu_flush(what);
    struct mmuext_op flush = { .cmd = MMUEXT_TLB_FLUSH_LOCAL };
    long rc = hypervisor_mmuext_op(&flush, 1);
    if (rc) shim_fatal("mmuext_op TLB flush", rc);
}

/* A zeroed frame for a new page table, from the top of the pool. */
static uint64_t mm_take_table_frame(const char *what)
{
    if (pool_top <= pool_next) shim_fatal(what, -12);
    uint64_t pfn = --pool_top;
    if (pfn < boot_map_pages) { /* Xen refuses a page table that has a writable mapping */
        long rc = hypervisor_update_va_mapping(VIRT_BASE + (pfn << 12), 0, UVMF_INVLPG);
        if (rc) shim_fatal("update_va_mapping to unmap a page-table frame", rc);
    }
    struct mmuext_op clear = { .cmd = MMUEXT_CLEAR_PAGE, .arg1.mfn = p2m[pfn] };
    long rc = hypervisor_mmuext_op(&clear, 1);
    if (rc) shim_fatal("mmuext_op MMUEXT_CLEAR_PAGE", rc);
    return p2m[pfn];
}

/* Links a new table below its parent's entry; Xen validates it then. */
static uint64_t mm_new_table(uint64_t parent_entry_maddr, const char *what)
{
    uint64_t mfn = mm_take_table_frame(what);
    struct mmu_update link = { parent_entry_maddr | MMU_NORMAL_PT_UPDATE, (mfn << 12) | TABLE_PROT };
    long rc = hypervisor_mmu_update(&link, 1);
    if (rc) shim_fatal(what, rc);
    return mfn;
}

/* Maps wasm pages [old_pages, new_pages); -1 (nothing changed) when frames run out. */
int mm_linear_grow(uint32_t old_pages, uint32_t new_pages)
{
    uint64_t first = (uint64_t)old_pages * 16, end = (uint64_t)new_pages * 16; /* 4 KiB pages */
    if (end <= first) return 0;
    uint64_t need = end - first;
    for (uint64_t t = first >> 9; t <= (end - 1) >> 9; t++) need += !linear_l1_mfn[t];
    for (uint64_t t = first >> 18; t <= (end - 1) >> 18; t++) need += !linear_l2_mfn[t];
    if (need > pool_top - pool_next) return -1;
    for (uint64_t k = first; k < end; k++) {
        if (!linear_l2_mfn[k >> 18])
            linear_l2_mfn[k >> 18] =
                mm_new_table((linear_l3_mfn << 12) + (k >> 18) * 8, "mmu_update for a linear memory L2");
        if (!linear_l1_mfn[k >> 9])
            linear_l1_mfn[k >> 9] = mm_new_table((linear_l2_mfn[k >> 18] << 12) + ((k >> 9) & 511) * 8,
                                                 "mmu_update for a linear memory L1");
        mmu_queue((linear_l1_mfn[k >> 9] << 12) + (k & 511) * 8, (p2m[pool_next++] << 12) | DATA_PROT | nx,
                  "mmu_update for linear memory pages");
    }
    mmu_flush("mmu_update for linear memory pages");
    memset((void *)(LINEAR_BASE + (first << 12)), 0, (end - first) << 12); /* frames are not scrubbed */
    return 0;
}

/* The machine frame that is the linear memory's own page at `offset`. */
uint64_t mm_linear_own_mfn(uint32_t offset) { return p2m[linear_first_pfn + (offset >> 12)]; }

/* Points the linear page at `offset` at frame `mfn` (0: its own frame again). */
long mm_linear_remap(uint32_t offset, uint64_t mfn)
{
    if (!mfn) mfn = mm_linear_own_mfn(offset);
    return hypervisor_update_va_mapping(LINEAR_BASE + offset, (mfn << 12) | DATA_PROT | nx, UVMF_INVLPG);
}

/* Maps frame `mfn` at I/O page `idx` (RW, NX); its tables are made on first use. */
void *mm_io_map(unsigned idx, uint64_t mfn)
{
    if (idx >= 512) shim_fatal("mm_io_map beyond the I/O region's first 2 MiB", -XEN_EINVAL);
    if (!io_l1_mfn) {
        uint64_t l3 = mm_new_table(l4_maddr + L4_SLOT(IO_BASE) * 8, "mmu_update for the I/O region L3");
        uint64_t l2 = mm_new_table(l3 << 12, "mmu_update for the I/O region L2");
        io_l1_mfn = mm_new_table(l2 << 12, "mmu_update for the I/O region L1");
    }
    uint64_t va = IO_BASE + ((uint64_t)idx << 12);
    long rc = hypervisor_update_va_mapping(va, (mfn << 12) | DATA_PROT | nx, UVMF_INVLPG);
    if (rc) shim_fatal("update_va_mapping of an I/O page", rc);
    return (void *)va;
}

void mm_init(uint64_t boot_rsp)
{
    p2m = (uint64_t *)start_info->mfn_list;
    uint32_t eax, ebx, ecx, edx;
    asm("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(0x80000001), "c"(0));
    nx = (edx >> 20) & 1 ? PTE_NX : 0;

    /* The boot mapping: L4[511] -> L3[510] -> L2[0..n), 4 KiB pages from VIRT_BASE. */
    uint64_t *l4 = (uint64_t *)start_info->pt_base;
    uint64_t l3_510 = pte_table(l4[511])[510];
    uint64_t *l2 = pte_table(l3_510);
    while (boot_map_pages / 512 < 512 && (l2[boot_map_pages / 512] & PTE_P)) {
        if (l2[boot_map_pages / 512] & PTE_PS) shim_fatal("boot mapping with superpages", -XEN_EINVAL);
        boot_map_pages += 512;
    }
    mm_protect_image(l2, l3_510 & PTE_ADDR);

    /* The pool starts after Xen's page tables and the boot stack that follows them. */
    pool_next = virt_to_pfn((void *)start_info->pt_base) + start_info->nr_pt_frames;
    if (virt_to_pfn((void *)(boot_rsp - 1)) >= pool_next) pool_next = virt_to_pfn((void *)(boot_rsp - 1)) + 1;
    if (pool_next < virt_to_pfn(_end)) shim_fatal("start-of-day area overlapping the image", -XEN_EINVAL);
    pool_top = start_info->nr_pages;
    linear_first_pfn = pool_next;

    /* The linear memory's L3 (the reservation); its L2s and L1s come with memory.grow. */
    l4_maddr = p2m[virt_to_pfn(l4)] << 12;
    linear_l3_mfn = mm_new_table(l4_maddr + L4_SLOT(LINEAR_BASE) * 8, "mmu_update for the linear memory L3");
}
