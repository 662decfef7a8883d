// Grant tables, v1 (ABI.md §9, xen/include/public/grant_table.h): share a page
// of the I/O region with another domain, or map one of its pages into ours.
import * as abi from "../abi";
import * as iopage from "../iopage";

/** A page of ours that another domain may map. */
export class Grant {
  constructor(
    public ref: i32,
    public page: usize,
    public domid: i32,
    public readonly_: bool,
  ) {}

  /** Ends the other domain's access: 0, or -EBUSY while it still maps the page (try again later). */
  end(): i32 {
    return abi.gnttab_end_access(this.ref);
  }
}

/** Grants `page` (4096-aligned, from iopage.alloc) to `domid`; null and `lastError` on failure. */
export function grant(domid: i32, page: usize, readonly_: bool): Grant | null {
  const ref = abi.gnttab_grant_access(domid, page, readonly_ ? 1 : 0);
  if (ref < 0) {
    lastError = -ref;
    return null;
  }
  return new Grant(ref, page, domid, readonly_);
}

/** A foreign page mapped over one of our I/O pages. */
export class Mapping {
  constructor(
    public handle: i32,
    public page: usize,
  ) {}

  /** Unmaps and returns the page to the I/O region. 0 or -errno (then the page stays mapped and owned). */
  unmap(): i32 {
    if (this.handle < 0) return -abi.EINVAL;
    const rc = abi.gnttab_unmap(this.handle);
    if (rc == 0) {
      this.handle = -1;
      iopage.release(this.page);
    }
    return rc;
  }
}

/** Maps grant `ref` of `domid` over a fresh I/O page; null and `lastError` on failure. */
export function map(domid: i32, ref: i32, readonly_: bool): Mapping | null {
  const page = iopage.alloc();
  if (page == 0) {
    lastError = abi.ENOMEM;
    return null;
  }
  const h = abi.gnttab_map(domid, ref, page, readonly_ ? 1 : 0);
  if (h < 0) {
    iopage.release(page);
    lastError = -h;
    return null;
  }
  return new Mapping(h, page);
}

/** The errno of the last failed grant() or map(). */
export let lastError: i32 = 0;
