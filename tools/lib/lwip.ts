// lwIP as a native library (tools/lib/native.ts): lwIP 2.1.3's IPv4 core (ARP, ICMP, UDP,
// TCP, DHCP; raw API, NO_SYS=1, static pools) plus lwip/glue.c (lwIP's callbacks forwarded
// to functions the app exports, module "app", names morgana_lwip_*), compiled by clang to
// wasm32 objects that the native module of an app with app.json "native": ["lwip", ...]
// links with the freestanding libc (sqlite/libc.c). The app imports lwIP's functions from
// module "native". Options: lwip/lwipopts.h.
//
// The source is Debian's `lwip` source package (2.1.3+dfsg1), fetched once with apt from
// the mirrors this machine already trusts, through a private deb-src list (the system's apt
// configuration is never touched). apt checks the chain: the suite's InRelease signature
// (Signed-By), the Sources index hashes, then the .dsc and tarball hashes; we also check the
// tarball against the .dsc and against the sha256 pinned below. Only the upstream tarball is
// used: Debian's patches touch the socket API, PPP and its build, none of which we compile.
// Every step is cached by content under .cache/lwip/; nothing fetched is committed.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUILD_DIR, ROOT } from "./paths.ts";
import { tool } from "./exec.ts";
import { cacheArea, cached, contentKey as key, hashDir, hashTree } from "./cache.ts";
import {
  buildNative,
  checkNativeModule,
  CLANG,
  codegenFlags,
  LIBC_INCLUDE,
  NATIVE_APP_MODULE,
  NativeBuild,
  NativeComponent,
  NativeObjects,
  Toolchain,
} from "./native.ts";

export const LWIP_SOURCE_PACKAGE = "lwip";
/** The upstream tarball inside Debian's source package, and its sha256 (from the .dsc of 2.1.3+dfsg1-2). */
export const LWIP_ORIG = "lwip_2.1.3+dfsg1.orig.tar.xz";
export const LWIP_ORIG_SHA256 = "0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24";
export const LWIP_APP_PREFIX = "morgana_lwip_";

const PORT_DIR = join(ROOT, "lwip");
const CACHE = cacheArea("lwip");
/** The native module of the selection ["lwip"], nativeWasmPath(["lwip"]) spelt out (native.ts's
 * bindings are not ready while this file loads: the import cycle). */
export const LWIP_WASM = join(BUILD_DIR, "native-lwip.wasm");
/** lwIP's C stack: its deepest path (tcp_input → tcp_receive → the app's callback) is shallow. */
export const LWIP_STACK = 64 * 1024;
const APT_SOURCES = "/etc/apt/sources.list.d";

/** lwIP's own sources we compile (paths under the tarball's src/): the IPv4 core and Ethernet. */
export const LWIP_UNITS = [
  "core/init.c",
  "core/def.c",
  "core/inet_chksum.c",
  "core/ip.c",
  "core/mem.c",
  "core/memp.c",
  "core/netif.c",
  "core/pbuf.c",
  "core/tcp.c",
  "core/tcp_in.c",
  "core/tcp_out.c",
  "core/timeouts.c",
  "core/udp.c",
  "core/ipv4/dhcp.c",
  "core/ipv4/etharp.c",
  "core/ipv4/icmp.c",
  "core/ipv4/ip4.c",
  "core/ipv4/ip4_addr.c",
  "core/ipv4/ip4_frag.c",
  "netif/ethernet.c",
];

/** lwIP's raw API functions the module exports, besides the glue's morgana_lwip_* (export_name in lwip/glue.c). */
export const LWIP_API = [
  "lwip_init",
  "sys_check_timeouts",
  "netif_add",
  "netif_remove",
  "netif_set_up",
  "netif_set_down",
  "netif_set_link_up",
  "netif_set_link_down",
  "netif_set_addr",
  "ethernet_input",
  "etharp_output",
  "dhcp_start",
  "dhcp_stop",
  "dhcp_release",
  "pbuf_alloc",
  "pbuf_free",
  "pbuf_ref",
  "pbuf_take",
  "pbuf_copy_partial",
  "tcp_new",
  "tcp_bind",
  "tcp_listen_with_backlog",
  "tcp_accept",
  "tcp_write",
  "tcp_output",
  "tcp_recved",
  "tcp_shutdown",
  "tcp_close",
  "tcp_abort",
  "udp_new",
  "udp_remove",
  "udp_bind",
  "udp_connect",
  "udp_disconnect",
  "udp_send",
  "udp_sendto",
];

/** The functions the module imports from the app (lwip/glue.c's IMPORT lines): exactly these. */
export const LWIP_IMPORTS = [
  "now",
  "rand",
  "linkoutput",
  "netif_status",
  "tcp_accept",
  "tcp_connected",
  "tcp_recv",
  "tcp_sent",
  "tcp_err",
  "udp_recv",
].map((n) => LWIP_APP_PREFIX + n);

/** One deb-src stanza per enabled deb stanza of the system's deb822 sources (same URIs, suites, components, key). */
export function debSrcSources(dir = APT_SOURCES): string {
  const out: string[] = [];
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sources")) : [];
  for (const f of files.sort()) {
    const text = readFileSync(join(dir, f), "utf8");
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>();
      let last = "";
      for (const line of stanza.split("\n")) {
        if (/^\s*#/.test(line) || !line.trim()) continue;
        if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`);
        else {
          const m = /^([\w-]+):\s*(.*)$/.exec(line);
          if (m) fields.set((last = m[1].toLowerCase()), m[2].trim());
        }
      }
      const types = (fields.get("types") ?? "").split(/\s+/);
      if (!types.includes("deb") || /^(no|false)$/i.test(fields.get("enabled") ?? "")) continue;
      const uris = fields.get("uris");
      const suites = fields.get("suites");
      if (!uris || !suites) continue;
      out.push(
        [
          "Types: deb-src",
          `URIs: ${uris}`,
          `Suites: ${suites}`,
          ...(fields.has("components") ? [`Components: ${fields.get("components")}`] : []),
          ...(fields.has("signed-by") ? [`Signed-By: ${fields.get("signed-by")}`] : []),
        ].join("\n"),
      );
    }
  }
  if (out.length === 0)
    throw new Error(
      `fetching lwIP's source: ${dir} has no enabled "Types: deb" stanza in a .sources file to derive a deb-src list from (a Debian system with apt is needed once; the source is cached in .cache/lwip/)`,
    );
  return out.join("\n\n") + "\n";
}

/** The sha256 the .dsc gives for `file` (its Checksums-Sha256 field). */
export function dscSha256(dsc: string, file: string): string | null {
  const field = /^Checksums-Sha256:\s*\n((?:[ \t]+\S.*\n?)+)/m.exec(dsc);
  for (const line of field?.[1].split("\n") ?? []) {
    const [sum, , name] = line.trim().split(/\s+/);
    if (name === file) return sum;
  }
  return null;
}

/** Fetches and unpacks lwIP's source once; returns the folder holding src/ and COPYING. */
export async function lwipSource(log: (l: string) => void = () => {}): Promise<string> {
  const dir = join(CACHE, "src", key(LWIP_ORIG_SHA256));
  await cached(dir, async (tmp) => {
    // apt's lists and the downloads live beside the entry and go away whatever happens.
    const work = `${tmp}.work`;
    rmSync(work, { recursive: true, force: true });
    try {
      const orig = await fetchLwipTarball(work, APT_SOURCES, log);
      mkdirSync(tmp);
      await tool(
        "tar",
        ["-xJf", orig, "-C", tmp, "--strip-components=1", "lwip-2.1.3/src", "lwip-2.1.3/COPYING"],
        "unpacking lwIP's source",
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
  return dir;
}

/** apt-get source --download-only lwip into `work` through a deb-src list derived from the
 * .sources files in `sourcesDir`; checks the tarball; returns its path. */
export async function fetchLwipTarball(work: string, sourcesDir: string, log: (l: string) => void = () => {}): Promise<string> {
  const apt = join(work, "apt");
  const dl = join(work, "dl");
  mkdirSync(join(apt, "lists", "partial"), { recursive: true });
  mkdirSync(join(apt, "cache"), { recursive: true });
  mkdirSync(dl, { recursive: true });
  writeFileSync(join(apt, "morgana-deb-src.sources"), debSrcSources(sourcesDir));
  const opts = [
    "-o",
    "Dir::Etc::SourceList=/dev/null",
    "-o",
    `Dir::Etc::SourceParts=${apt}`,
    "-o",
    `Dir::State::Lists=${join(apt, "lists")}`,
    "-o",
    `Dir::Cache=${join(apt, "cache")}`, // apt's package caches too: nothing of the system's is rewritten
  ];
  log(`  lwip     fetching Debian's ${LWIP_SOURCE_PACKAGE} source package (apt-get source)`);
  const unreachable = (detail: string) =>
    new Error(
      `fetching lwIP's source: apt-get could not fetch Debian's "${LWIP_SOURCE_PACKAGE}" source package from the mirrors in ${sourcesDir} ` +
        `(no network, or a proxy apt is not configured for?). It is needed once; the source is then cached in .cache/lwip/.\n${detail}`,
    );
  try {
    // --error-on=any: an unreachable mirror is an error, not a warning beside exit 0.
    await tool("apt-get", [...opts, "update", "--error-on=any"], "apt-get update (a private deb-src list)", { cwd: work });
  } catch (e) {
    throw unreachable(e instanceof Error ? e.message : String(e));
  }
  try {
    await tool(
      "apt-get",
      [...opts, "source", "--download-only", LWIP_SOURCE_PACKAGE],
      `apt-get source --download-only ${LWIP_SOURCE_PACKAGE}`,
      {
        cwd: dl,
      },
    );
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/Unable to find a source package/.test(msg))
      throw new Error(`fetching lwIP's source: the mirrors in ${sourcesDir} list no source package "${LWIP_SOURCE_PACKAGE}"\n${msg}`);
    throw unreachable(msg);
  }
  const dscName = readdirSync(dl).find((f) => f.endsWith(".dsc"));
  if (!dscName) throw new Error(`fetching lwIP's source: apt-get source left no .dsc in ${dl}`);
  const want = dscSha256(readFileSync(join(dl, dscName), "utf8"), LWIP_ORIG);
  if (want !== LWIP_ORIG_SHA256)
    throw new Error(
      `fetching lwIP's source: ${dscName} gives sha256 ${want ?? "nothing"} for ${LWIP_ORIG}, not the pinned ${LWIP_ORIG_SHA256} (tools/lib/lwip.ts): Debian changed the upstream tarball; review it and re-pin`,
    );
  const orig = join(dl, LWIP_ORIG);
  if (!existsSync(orig)) throw new Error(`fetching lwIP's source: apt-get source did not download ${LWIP_ORIG}`);
  const got = createHash("sha256").update(readFileSync(orig)).digest("hex");
  if (got !== LWIP_ORIG_SHA256)
    throw new Error(`fetching lwIP's source: ${LWIP_ORIG} has sha256 ${got}, but ${dscName} says ${LWIP_ORIG_SHA256}`);
  return orig;
}

export type LwipBuild = NativeBuild;

export interface LwipOptions {
  log?: (line: string) => void;
}

/** lwIP for the native module's link: its objects, API, stack and callback imports. */
export function lwipComponent(): NativeComponent {
  return {
    name: "lwip",
    what: "lwIP",
    stackBytes: LWIP_STACK,
    exports: () => LWIP_API,
    // The raw API, and the glue's own exports (export_name in lwip/glue.c).
    provides: (n) => LWIP_API.includes(n) || n.startsWith(LWIP_APP_PREFIX),
    imports: (n) => LWIP_IMPORTS.includes(n),
    importsWhat: LWIP_IMPORTS.map((n) => `${NATIVE_APP_MODULE}.${n}`).join(", "),
    ascEntries: [],
    exportsHint: "the app exports lwIP's callbacks itself",
    compile: compileLwip,
  };
}

/** The native module of the selection ["lwip"] (build/native-lwip.wasm). */
export function buildLwip(opts: LwipOptions = {}): Promise<LwipBuild> {
  return buildNative(["lwip"], opts);
}

/** Runs `jobs` at most `n` at a time (the machine has 2 cores), results in order. */
async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return results;
}

/** Compiles lwIP's units and glue.c (or finds them in the cache). */
async function compileLwip(tc: Toolchain, log: (l: string) => void): Promise<NativeObjects> {
  const src = await lwipSource(log);
  const include = join(src, "src", "include");
  // Port headers first (lwipopts.h, arch/cc.h), then lwIP's; libc headers from sqlite/include.
  // -Os, not -O2: 11 KB less code in echo's image (the issue 14 size goal); SQLite keeps -O2.
  const cf = [...codegenFlags(tc.resourceDir, PORT_DIR).map((f) => (f === "-O2" ? "-Os" : f)), "-I", include];
  const headers = key(
    hashTree(PORT_DIR, (n) => n.endsWith(".h")),
    hashDir(LIBC_INCLUDE),
  );

  // lwIP's own files are keyed by the pinned tarball, ours by content; all by headers, flags and compiler.
  const units = [
    ...LWIP_UNITS.map((u) => ({ name: u, file: join(src, "src", u), id: LWIP_ORIG_SHA256 + u })),
    { name: "glue.c", file: join(PORT_DIR, "glue.c"), id: "" },
  ];
  const args = cf.join(" ").replaceAll(src, "<src>").replaceAll(ROOT, "<root>");
  const compiled: string[] = [];
  const compileMs: Record<string, number> = {};
  const objects = await pool(
    2,
    units.map((u) => async () => {
      const out = join(
        CACHE,
        "obj",
        key(u.name, u.id || readFileSync(u.file), headers, tc.clangVersion, args),
        u.name.replaceAll("/", "_").replace(/\.c$/, ".o"),
      );
      const c0 = performance.now();
      const hit = await cached(out, async (tmp) => {
        log(`  lwip     compiling ${u.name}`);
        await tool(CLANG, [...cf, "-c", u.file, "-o", tmp], `compiling ${u.name} for lwIP`);
      });
      if (!hit) {
        compiled.push(u.name);
        compileMs[u.name] = performance.now() - c0;
      }
      return out;
    }),
  );
  return { objects, compiled, compileMs };
}

/** Checks a native module of the selection ["lwip"]: imports only LWIP_IMPORTS from "app", exports memory, __heap_base and LWIP_API. */
export function checkLwipModule(wasm: Uint8Array, what = "the lwIP module"): void {
  checkNativeModule(wasm, ["lwip"], what);
}
