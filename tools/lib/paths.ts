// Where things live. Every tool resolves paths from the project root, so the
// commands work from any working directory.
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { existsSync, readdirSync } from "node:fs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const APPS_DIR = join(ROOT, "assembly", "apps");
export const BUILD_DIR = join(ROOT, "build");
export const IMAGES_DIR = join(ROOT, "images");
export const CACHE_DIR = process.env.MORGANA_CACHE ?? join(ROOT, ".cache");

/** The apps: every folder under assembly/apps with a main.ts. */
export function listApps(): string[] {
  return readdirSync(APPS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(APPS_DIR, d.name, "main.ts")))
    .map((d) => d.name)
    .sort();
}

export type Flavour = "release" | "debug";

/** The wasm file of an app: release is what build:image translates and dev runs. */
export function wasmPath(app: string, flavour: Flavour = "release"): string {
  return join(BUILD_DIR, flavour === "release" ? `${app}.wasm` : `${app}.debug.wasm`);
}

export class UsageError extends Error {}

/** Throws a UsageError naming the known apps when `app` is not one of them. */
export function checkApp(app: string | undefined): string {
  const apps = listApps();
  if (!app) throw new UsageError(`no app given; the apps are: ${apps.join(", ")}`);
  if (!apps.includes(app))
    throw new UsageError(`unknown app "${app}": there is no assembly/apps/${app}/main.ts (the apps are: ${apps.join(", ")})`);
  return app;
}
