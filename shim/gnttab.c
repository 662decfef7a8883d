/* Grant tables v1 (ABI.md §9, xen/include/public/grant_table.h): our table, set up on
 * first use and mapped into the I/O region, for pages we grant; and foreign grants
 * mapped over linear-memory pages with GNTTABOP_map_grant_ref at the page's virtual
 * address, the page's own frame restored by gnttab_unmap (mm.c: mm_linear_remap). */
#include "shim.h"
#include "hypercall.h"

#define GNT_FRAMES 4 /* 2048 entries, as the harness */
#define GNT_REFS   (GNT_FRAMES * PAGE_SIZE / sizeof(struct grant_entry_v1))
#define GNT_MAPS   256 /* live foreign mappings */
#define GNT_PAGE_OK(off)                                            \
    (((off) & (PAGE_SIZE - 1))                        ? -XEN_EINVAL \
     : (uint64_t)(off) + PAGE_SIZE > wasm_memory_size ? -XEN_EFAULT \
                                                      : 0)

static struct grant_entry_v1 *gnt_table; /* 0 until gnttab_setup */
static unsigned gnt_nr_refs;
static uint8_t gnt_used[GNT_REFS];

struct gnt_map {
    uint32_t xen_handle, offset, ref;
    uint16_t domid;
    uint8_t used;
};
static struct gnt_map gnt_maps[GNT_MAPS];

/* Whether a domain exists: GNTTABOP_query_size looks the domain up before it checks
 * that we may ask about it, so GNTST_bad_domain means "no such domain". */
int xen_domain_exists(uint32_t domid)
{
    if (domid == evtchn_self_domid || domid == DOMID_SELF) return 1;
    if (domid >= DOMID_FIRST_RESERVED) return 0;
    struct gnttab_query_size q = { .dom = domid };
    long rc = hypervisor_grant_table_op(GNTTABOP_query_size, &q, 1);
    return rc == 0 && q.status != GNTST_bad_domain;
}

/* GNTTABOP_setup_table, then our table's frames mapped at the I/O region's start. */
static int gnttab_setup(void)
{
    if (gnt_table) return 0;
    struct gnttab_query_size q = { .dom = DOMID_SELF };
    long rc = hypervisor_grant_table_op(GNTTABOP_query_size, &q, 1);
    if (rc || q.status != GNTST_okay) return -XEN_EIO;
    unsigned n = q.max_nr_frames < GNT_FRAMES ? q.max_nr_frames : GNT_FRAMES;
    uint64_t frames[GNT_FRAMES];
    struct gnttab_setup_table s = { .dom = DOMID_SELF, .nr_frames = n, .frame_list = frames };
    rc = hypervisor_grant_table_op(GNTTABOP_setup_table, &s, 1);
    if (rc || s.status != GNTST_okay) return -XEN_EIO;
    void *table = 0;
    for (unsigned i = 0; i < n; i++) {
        void *va = mm_io_map(i, frames[i]);
        if (i == 0) table = va;
    }
    gnt_nr_refs = n * PAGE_SIZE / sizeof(struct grant_entry_v1);
    gnt_table = table;
    return 0;
}

/* §9.1 */
int gnttab_grant_access(uint32_t domid, uint32_t offset, int readonly)
{
    int bad = GNT_PAGE_OK(offset);
    if (bad) return bad;
    if (domid == DOMID_SELF) domid = evtchn_self_domid; /* the entry must name a real domid */
    if (!xen_domain_exists(domid)) return -XEN_ESRCH;
    if ((bad = gnttab_setup())) return bad;
    for (unsigned ref = GNTTAB_NR_RESERVED_ENTRIES; ref < gnt_nr_refs; ref++) {
        if (gnt_used[ref]) continue;
        gnt_used[ref] = 1;
        gnt_table[ref].domid = domid;
        gnt_table[ref].frame = mm_linear_own_mfn(offset);
        barrier(); /* orders domid and frame before the flags that let Xen use them (x86 keeps stores in order) */
        gnt_table[ref].flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
        return ref;
    }
    return -XEN_ENOSPC;
}

/* §9.2: Xen sets GTF_reading/GTF_writing in the same 16-bit word while the grantee maps
 * the page, so clearing the flags with a compare-and-swap either revokes an unmapped
 * grant or sees the mapping and changes nothing. */
int gnttab_end_access(uint32_t ref)
{
    if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= gnt_nr_refs || !gnt_used[ref]) return -XEN_EINVAL;
    uint16_t flags = __atomic_load_n(&gnt_table[ref].flags, __ATOMIC_SEQ_CST);
    do {
        if (flags & (GTF_reading | GTF_writing)) return -XEN_EBUSY;
    } while (!__atomic_compare_exchange_n(&gnt_table[ref].flags, &flags, 0, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST));
    gnt_used[ref] = 0;
    return 0;
}

/* Is a foreign grant mapped over the linear page at offset? */
int gnttab_page_mapped(uint32_t offset)
{
    for (unsigned h = 0; h < GNT_MAPS; h++)
        if (gnt_maps[h].used && gnt_maps[h].offset == offset) return 1;
    return 0;
}

static int gnttab_status_errno(int16_t status)
{
    switch (status) {
    case GNTST_bad_domain: return -XEN_ESRCH;
    case GNTST_permission_denied: return -XEN_EPERM;
    case GNTST_no_device_space: return -XEN_ENOSPC;
    case GNTST_eagain: return -XEN_EAGAIN;
    case GNTST_bad_virt_addr: return -XEN_EFAULT;
    default: return -XEN_EINVAL; /* bad ref, or one not granted to us (Xen: general error) */
    }
}

/* GNTTABOP_map_grant_ref over the linear page at offset (Xen replaces its PTE). */
static int gnttab_map_op(uint32_t domid, uint32_t ref, uint32_t offset, int readonly,
                         struct gnttab_map_grant_ref *op)
{
    *op = (struct gnttab_map_grant_ref){
        .host_addr = (uint64_t)mm_linear_base() + offset,
        .flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0),
        .ref = ref,
        .dom = domid,
    };
    long rc = hypervisor_grant_table_op(GNTTABOP_map_grant_ref, op, 1);
    if (rc) return (int)rc;
    if (op->status != GNTST_okay) return gnttab_status_errno(op->status);
    struct mmuext_op inval = { .cmd = MMUEXT_INVLPG_LOCAL, .arg1.linear_addr = op->host_addr };
    hypervisor_mmuext_op(&inval, 1); /* the page's old translation may be cached */
    return 0;
}

/* GNTTABOP_unmap_grant_ref leaves the PTE empty; the page's own frame goes back in. */
static int gnttab_unmap_op(uint32_t offset, uint32_t xen_handle)
{
    struct gnttab_unmap_grant_ref op = { .host_addr = (uint64_t)mm_linear_base() + offset,
                                         .handle = xen_handle };
    long rc = hypervisor_grant_table_op(GNTTABOP_unmap_grant_ref, &op, 1);
    if (rc) return (int)rc;
    if (op.status != GNTST_okay) return gnttab_status_errno(op.status);
    rc = mm_linear_remap(offset, 0);
    if (rc) shim_fatal("update_va_mapping restoring a page after GNTTABOP_unmap_grant_ref", rc);
    return 0;
}

/* §9.3 */
int gnttab_map(uint32_t domid, uint32_t ref, uint32_t offset, int readonly)
{
    int bad = GNT_PAGE_OK(offset);
    if (bad) return bad;
    if (domid == DOMID_SELF || domid == evtchn_self_domid) return -XEN_EINVAL; /* v1: no grant of our own */
    if (domid >= DOMID_FIRST_RESERVED) return -XEN_ESRCH;
    if (offset == abi_store_ring_offset) return -XEN_EBUSY;
    unsigned free = GNT_MAPS;
    for (unsigned h = 0; h < GNT_MAPS; h++) {
        struct gnt_map *m = &gnt_maps[h];
        if (!m->used) {
            if (free == GNT_MAPS) free = h;
            continue;
        }
        if (m->offset == offset || (m->domid == domid && m->ref == ref)) return -XEN_EBUSY;
    }
    if (free == GNT_MAPS) return -XEN_ENOSPC;
    struct gnttab_map_grant_ref op;
    int rc = gnttab_map_op(domid, ref, offset, readonly, &op);
    if (rc == -XEN_EINVAL && !readonly && gnttab_map_op(domid, ref, offset, 1, &op) == 0) {
        /* Xen refuses a writable map of a read-only grant as a general error; the ABI
         * says -EPERM, so a read-only map that works tells the two apart. */
        gnttab_unmap_op(offset, op.handle);
        return -XEN_EPERM;
    }
    if (rc) return rc;
    gnt_maps[free] = (struct gnt_map){ op.handle, offset, ref, domid, 1 };
    return free;
}

/* §9.4 */
int gnttab_unmap(uint32_t handle)
{
    if (handle >= GNT_MAPS || !gnt_maps[handle].used) return -XEN_EINVAL;
    int rc = gnttab_unmap_op(gnt_maps[handle].offset, gnt_maps[handle].xen_handle);
    if (!rc) gnt_maps[handle].used = 0;
    return rc;
}
