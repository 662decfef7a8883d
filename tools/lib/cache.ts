// The content-addressed build cache under .cache/<area>/ ($MORGANA_CACHE): an entry's
// path holds the sha256 of everything that went into it (sources, flags, tool versions),
// so a hit is always right and nothing is ever invalidated; entries are written under a
// temporary name and renamed into place, so a crash or a parallel build never leaves half a file.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { CACHE_DIR, ROOT } from "./paths.ts";

/** The cache folder of one area ("image", "sqlite", "bench-linux"). */
export function cacheArea(area: string): string {
  return join(CACHE_DIR, area);
}

/** Hex sha256 of the parts, each followed by a NUL (so ("ab","c") and ("a","bc") differ). */
export function sha256(...parts: (string | Uint8Array)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
}

/** A cache key: the first 32 hex digits of sha256(parts). */
export function contentKey(...parts: (string | Uint8Array)[]): string {
  return sha256(...parts).slice(0, 32);
}

/** Hash of the files under `dir` whose names pass `filter` (paths relative to the project
 * root and contents), in name order, skipping the folders `skip` names. */
export function hashTree(dir: string, filter: (name: string) => boolean, skip: (dir: string) => boolean = () => false): string {
  const h = createHash("sha256");
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!skip(p)) walk(p);
      } else if (filter(e.name)) h.update(relative(ROOT, p)).update("\0").update(readFileSync(p)).update("\0");
    }
  };
  walk(dir);
  return h.digest("hex");
}

/** Hash of the files directly in `dir` (names and contents), in name order. */
export function hashDir(dir: string): string {
  const h = createHash("sha256");
  for (const f of readdirSync(dir).sort())
    h.update(f)
      .update("\0")
      .update(readFileSync(join(dir, f)))
      .update("\0");
  return h.digest("hex");
}

/**
 * Makes cache entry `out` (a file or a folder) with `make(tmp)` unless it exists; resolves
 * to true on a hit. `make` writes `tmp`, which is renamed to `out` when it succeeds and
 * removed when it fails.
 */
export async function cached(out: string, make: (tmp: string) => Promise<unknown>): Promise<boolean> {
  if (existsSync(out)) return true;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await make(tmp);
    try {
      renameSync(tmp, out);
    } catch (e) {
      // another build made the same entry meanwhile (a folder cannot be renamed over it): same content
      if (!existsSync(out)) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return false;
}
