// xenstored's data: a tree of nodes with values, permissions and generation
// counts, with the access rules of the real daemon (docs/misc/xenstore.txt):
// the owner (first permission entry) and dom0 may do anything; others get the
// entry naming them, else the first entry's default (n, r, w or b).
import { EACCES, EINVAL, ENOENT } from "./errno.ts";
import { ABS_PATH_MAX, REL_PATH_MAX } from "./xs-wire.ts";

export interface Perm {
  id: number;
  r: boolean;
  w: boolean;
}

export class XsNode {
  value = new Uint8Array(0);
  children = new Map<string, XsNode>();
  constructor(
    public perms: Perm[],
    public gen: number,
  ) {}

  clone(): XsNode {
    const n = new XsNode(
      this.perms.map((p) => ({ ...p })),
      this.gen,
    );
    n.value = this.value;
    for (const [k, c] of this.children) n.children.set(k, c.clone());
    return n;
  }
}

/** An errno reported to the client as XS_ERROR. */
export class XsError {
  constructor(readonly errno: number) {}
}

export function parsePerm(s: string): Perm | null {
  const m = /^([nrwb])(\d+)$/.exec(s);
  if (!m) return null;
  return { id: Number(m[2]), r: m[1] === "r" || m[1] === "b", w: m[1] === "w" || m[1] === "b" };
}

export function permString(p: Perm): string {
  return (p.r && p.w ? "b" : p.r ? "r" : p.w ? "w" : "n") + p.id;
}

/** Checks a path as xenstored does; returns the absolute form. */
export function canonical(path: string, domid: number, watch = false): string {
  if (watch && path.startsWith("@")) {
    if (path !== "@introduceDomain" && path !== "@releaseDomain") throw new XsError(EINVAL);
    return path;
  }
  const rel = !path.startsWith("/");
  if (path.length > (rel ? REL_PATH_MAX : ABS_PATH_MAX)) throw new XsError(EINVAL);
  const abs = rel ? `/local/domain/${domid}/${path}` : path;
  if (!/^[A-Za-z0-9\-/_@]+$/.test(abs)) throw new XsError(EINVAL);
  if (abs.includes("//") || (abs.length > 1 && abs.endsWith("/"))) throw new XsError(EINVAL);
  return abs;
}

function parts(path: string): string[] {
  return path === "/" ? [] : path.slice(1).split("/");
}

export class XsTree {
  root: XsNode;
  /** Bumped on every change; a node's gen is the value at its last change. */
  generation = 1;

  constructor(root?: XsNode) {
    this.root = root ?? new XsNode([{ id: 0, r: false, w: false }], 0);
  }

  lookup(path: string): XsNode | undefined {
    let n: XsNode | undefined = this.root;
    for (const p of parts(path)) {
      n = n.children.get(p);
      if (!n) return undefined;
    }
    return n;
  }

  static can(node: XsNode, domid: number, want: "r" | "w"): boolean {
    if (domid === 0 || node.perms[0].id === domid) return true;
    const entry = node.perms.slice(1).find((p) => p.id === domid) ?? node.perms[0];
    return want === "r" ? entry.r : entry.w;
  }

  /** The node, or ENOENT / EACCES (EACCES too when an unreadable ancestor hides it). */
  get(path: string, domid: number, want: "r" | "w"): XsNode {
    const n = this.lookup(path);
    if (!n) {
      const anc = this.nearest(path);
      throw new XsError(XsTree.can(anc, domid, "r") ? ENOENT : EACCES);
    }
    if (!XsTree.can(n, domid, want)) throw new XsError(EACCES);
    return n;
  }

  /** Creates missing nodes down to path (permission: write on the nearest existing ancestor). */
  create(path: string, domid: number): { node: XsNode; created: boolean } {
    const existing = this.lookup(path);
    if (existing) return { node: existing, created: false };
    const anc = this.nearest(path);
    if (!XsTree.can(anc, domid, "w")) throw new XsError(EACCES);
    let n = this.root;
    for (const p of parts(path)) {
      let c = n.children.get(p);
      if (!c) {
        // A new node inherits its parent's permissions; a domU creating it becomes its owner.
        const perms = n.perms.map((q) => ({ ...q }));
        if (domid !== 0) perms[0] = { ...perms[0], id: domid };
        c = new XsNode(perms, this.generation);
        n.children.set(p, c);
        n.gen = this.generation;
      }
      n = c;
    }
    this.generation++;
    return { node: n, created: true };
  }

  write(path: string, domid: number, value: Uint8Array): void {
    const { node, created } = this.create(path, domid);
    if (!created && !XsTree.can(node, domid, "w")) throw new XsError(EACCES);
    node.value = value.slice();
    node.gen = this.generation++;
  }

  mkdir(path: string, domid: number): void {
    const { created } = this.create(path, domid);
    if (!created) this.get(path, domid, "w"); // EEXIST is not an error for mkdir; access still is
  }

  rm(path: string, domid: number): void {
    if (path === "/") throw new XsError(EINVAL);
    this.get(path, domid, "w");
    const parentPath = path.slice(0, path.lastIndexOf("/")) || "/";
    const parent = this.lookup(parentPath)!;
    if (!XsTree.can(parent, domid, "w")) throw new XsError(EACCES);
    parent.children.delete(path.slice(path.lastIndexOf("/") + 1));
    parent.gen = this.generation++;
  }

  setPerms(path: string, domid: number, perms: Perm[]): void {
    if (perms.length === 0) throw new XsError(EINVAL);
    const node = this.get(path, domid, "w");
    // Only dom0 and the owner may change permissions (a domU may not give a node away).
    if (domid !== 0 && node.perms[0].id !== domid) throw new XsError(EACCES);
    if (domid !== 0 && perms[0].id !== domid) throw new XsError(EACCES);
    node.perms = perms;
    node.gen = this.generation++;
  }

  /** The closest existing ancestor of path (the root at worst). */
  nearest(path: string): XsNode {
    let n = this.root;
    for (const p of parts(path)) {
      const c = n.children.get(p);
      if (!c) break;
      n = c;
    }
    return n;
  }

  /** Generation of the node at path, -1 when absent (transaction conflict checks). */
  genOf(path: string): number {
    return this.lookup(path)?.gen ?? -1;
  }
}
