// The emulated grant table (Xen grant tables v1, xen/include/public/grant_table.h),
// both directions, as strict as Xen:
//   - the guest grants 4 KiB pages of its linear memory to dom0 (gnttab_grant_access)
//     and a JS backend maps them (backendMap), read-only or writable;
//   - dom0 (a JS backend) offers frames (offer) and the guest maps them into a page
//     of its linear memory (gnttab_map), which then shows the foreign frame.
// Linear memory cannot alias in JS, so a guest mapping copies the frame in and the
// wasm page becomes the frame's storage until unmap; a read-only mapping keeps a
// snapshot, and any guest write to it is a fault (checkReadOnly), as on Xen.
import { DOM0, DOMID_SELF, EBUSY, EFAULT, EINVAL, ENOSPC, EPERM, ESRCH, GuestFault, PAGE_SIZE } from "./errno.ts";

/** Xen reserves the first 8 entries (GNTTAB_NR_RESERVED_ENTRIES, grant_table.h). */
export const FIRST_REF = 8;
/** Entries the emulated table holds: 4 frames of 512 v1 entries. */
export const MAX_REFS = 4 * 512;
const MAX_HANDLES = 1024;

/** A backend (JS) misused the grant table: a bug in the test or backend, not the guest. */
export class GrantError extends Error {}

interface GuestGrant {
  domid: number;
  addr: number;
  readonly: boolean;
  maps: number;
}

interface ForeignGrant {
  toDomid: number;
  frame: Uint8Array;
  readonly: boolean;
  /** Guest address where it is mapped, or -1. */
  mappedAt: number;
}

interface GuestMapping {
  ref: number;
  addr: number;
  readonly: boolean;
  /** The guest page's own contents, restored by unmap. */
  saved: Uint8Array;
}

/** A dom0 mapping of a page the guest granted. */
export class GrantMapping {
  private live = true;
  constructor(
    private readonly gt: GrantTable,
    readonly ref: number,
    readonly readonly: boolean,
  ) {}

  private page(): Uint8Array {
    if (!this.live) throw new GrantError(`grant ref ${this.ref}: used after unmap`);
    return this.gt.guestPage(this.ref);
  }

  read(off: number, len: number): Uint8Array {
    if (off < 0 || len < 0 || off + len > PAGE_SIZE) throw new GrantError(`grant ref ${this.ref}: read [${off}, +${len}) outside the page`);
    return this.page().slice(off, off + len);
  }

  write(off: number, bytes: Uint8Array): void {
    if (this.readonly) throw new GrantError(`grant ref ${this.ref}: write through a read-only grant`);
    if (off < 0 || off + bytes.length > PAGE_SIZE)
      throw new GrantError(`grant ref ${this.ref}: write [${off}, +${bytes.length}) outside the page`);
    this.page().set(bytes, off);
  }

  unmap(): void {
    this.page();
    this.live = false;
    this.gt.backendUnmap(this.ref);
  }
}

export class GrantTable {
  private readonly grants = new Map<number, GuestGrant>();
  private readonly foreign = new Map<number, ForeignGrant>();
  private readonly mappings = new Map<number, GuestMapping>();
  private nextForeign = FIRST_REF;

  constructor(
    private readonly domid: number,
    private readonly memory: () => ArrayBuffer,
  ) {}

  // ---- the guest's side (ABI §9) ----

  /** gnttab_grant_access: a ref ≥ 8 or -errno. */
  grantAccess(domid: number, addr: number, readonly: number): number {
    const bad = this.checkPage(addr);
    if (bad) return bad;
    if (domid !== DOM0 && domid !== this.domid && domid !== DOMID_SELF) return -ESRCH;
    for (let ref = FIRST_REF; ref < FIRST_REF + MAX_REFS; ref++) {
      if (this.grants.has(ref)) continue;
      this.grants.set(ref, { domid: domid === DOMID_SELF ? this.domid : domid, addr: addr >>> 0, readonly: readonly !== 0, maps: 0 });
      return ref;
    }
    return -ENOSPC;
  }

  /** gnttab_end_access: 0, -EBUSY while mapped, -EINVAL for an unknown ref. */
  endAccess(ref: number): number {
    const g = this.grants.get(ref);
    if (!g) return -EINVAL;
    if (g.maps > 0) return -EBUSY;
    this.grants.delete(ref);
    return 0;
  }

  /** gnttab_map: a handle ≥ 0 or -errno. */
  map(domid: number, ref: number, addr: number, readonly: number): number {
    const bad = this.checkPage(addr);
    if (bad) return bad;
    if (domid !== DOM0) return domid === this.domid || domid === DOMID_SELF ? -EINVAL : -ESRCH;
    const f = this.foreign.get(ref);
    if (!f || f.toDomid !== this.domid) return -EINVAL;
    if (f.readonly && readonly === 0) return -EPERM;
    if (f.mappedAt >= 0) return -EBUSY; // one mapping per grant: a second is a guest bug
    for (const m of this.mappings.values()) if (m.addr === addr >>> 0) return -EBUSY;
    let handle = 0;
    while (this.mappings.has(handle)) handle++;
    if (handle >= MAX_HANDLES) return -ENOSPC;
    const page = this.page(addr);
    this.mappings.set(handle, { ref, addr: addr >>> 0, readonly: readonly !== 0, saved: page.slice() });
    page.set(f.frame);
    f.mappedAt = addr >>> 0;
    if (readonly !== 0) f.frame = f.frame.slice(); // the snapshot checkReadOnly compares with
    return handle;
  }

  /** gnttab_unmap: 0 or -EINVAL for an unknown handle. */
  unmap(handle: number): number {
    const m = this.mappings.get(handle);
    if (!m) return -EINVAL;
    this.checkReadOnly();
    const f = this.foreign.get(m.ref)!;
    const page = this.page(m.addr);
    if (!m.readonly) f.frame = page.slice(); // the wasm page was the frame's storage
    f.mappedAt = -1;
    page.set(m.saved);
    this.mappings.delete(handle);
    return 0;
  }

  /** Faults (as Xen's page fault would) when the guest wrote to a read-only mapping. */
  checkReadOnly(): void {
    for (const m of this.mappings.values()) {
      if (!m.readonly) continue;
      const f = this.foreign.get(m.ref)!;
      const page = this.page(m.addr);
      for (let i = 0; i < PAGE_SIZE; i++)
        if (page[i] !== f.frame[i])
          throw new GuestFault(`page fault: write to a read-only grant mapping (ref ${m.ref}) at 0x${(m.addr + i).toString(16)}`);
    }
  }

  // ---- dom0's side (JS backends and tests) ----

  /** Maps a page the guest granted to dom0. Throws GrantError as Xen would refuse. */
  backendMap(ref: number, readonly: boolean): GrantMapping {
    const g = this.grants.get(ref);
    if (!g) throw new GrantError(`grant ref ${ref}: unknown ref (not granted by domain ${this.domid})`);
    if (g.domid !== DOM0) throw new GrantError(`grant ref ${ref}: granted to domain ${g.domid}, not to dom0`);
    if (g.readonly && !readonly) throw new GrantError(`grant ref ${ref}: read-only grant mapped writable`);
    if (g.maps > 0) throw new GrantError(`grant ref ${ref}: already mapped (double map)`);
    g.maps++;
    return new GrantMapping(this, ref, readonly);
  }

  /** The live wasm page behind a guest grant (for GrantMapping). */
  guestPage(ref: number): Uint8Array {
    const g = this.grants.get(ref);
    if (!g) throw new GrantError(`grant ref ${ref}: access ended while mapped`);
    return this.page(g.addr);
  }

  backendUnmap(ref: number): void {
    const g = this.grants.get(ref);
    if (g) g.maps--;
  }

  /** dom0 grants one frame (copied) to the guest; returns its ref. */
  offer(frame: Uint8Array, readonly: boolean): number {
    if (frame.length !== PAGE_SIZE) throw new GrantError(`a frame is ${PAGE_SIZE} bytes, not ${frame.length}`);
    const ref = this.nextForeign++;
    this.foreign.set(ref, { toDomid: this.domid, frame: frame.slice(), readonly, mappedAt: -1 });
    return ref;
  }

  /** dom0's current view of a frame it offered (the guest's page while mapped writable). */
  frame(ref: number): Uint8Array {
    const f = this.foreign.get(ref);
    if (!f) throw new GrantError(`dom0 grant ref ${ref}: unknown`);
    return f.mappedAt >= 0 && this.isMappedWritable(ref) ? this.page(f.mappedAt).slice() : f.frame.slice();
  }

  /** How many guest grants and mappings are still live (leak checks). */
  live(): { grants: number; mappings: number } {
    return { grants: this.grants.size, mappings: this.mappings.size };
  }

  private isMappedWritable(ref: number): boolean {
    for (const m of this.mappings.values()) if (m.ref === ref) return !m.readonly;
    return false;
  }

  private checkPage(addr: number): number {
    const a = addr >>> 0;
    if (a % PAGE_SIZE !== 0) return -EINVAL;
    if (a + PAGE_SIZE > this.memory().byteLength) return -EFAULT;
    return 0;
  }

  private page(addr: number): Uint8Array {
    return new Uint8Array(this.memory(), addr >>> 0, PAGE_SIZE);
  }
}
