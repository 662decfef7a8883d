// What the host tells the unikernel at boot (ABI.md §3.6, §3.7).
import * as abi from "./abi";

/** Where the unikernel runs (boot_info.platform). */
export enum Platform {
  Xen = 1,
  Harness = 2,
}

/** A snapshot of the host's boot_info structure. */
export class BootInfo {
  abiVersion: u32 = 0;
  platform: Platform = Platform.Xen;
  /** The domain id, or -1 when the host cannot know it at boot. */
  domid: i32 = -1;
  siFlags: u32 = 0;
  nrPages: u64 = 0;
  memLimit: u64 = 0;
  storeMfn: u64 = 0;
  storeEvtchn: u32 = 0;
  consoleEvtchn: u32 = 0;
  consoleMfn: u64 = 0;
  bootNs: i64 = 0;
}

let cached: BootInfo | null = null;

/** The boot information; read once from the host and cached. */
export function info(): BootInfo {
  let bi = cached;
  if (bi) return bi;
  const buf = memory.data(abi.BOOTINFO_SIZE);
  const rc = abi.boot_info(buf, abi.BOOTINFO_SIZE);
  if (rc < abi.BOOTINFO_SIZE) unreachable(); // a v1 host always knows 64 bytes
  bi = new BootInfo();
  bi.abiVersion = load<u32>(buf + abi.BI_ABI_VERSION);
  bi.platform = <Platform>load<u32>(buf + abi.BI_PLATFORM);
  bi.domid = load<i32>(buf + abi.BI_DOMID);
  bi.siFlags = load<u32>(buf + abi.BI_SI_FLAGS);
  bi.nrPages = load<u64>(buf + abi.BI_NR_PAGES);
  bi.memLimit = load<u64>(buf + abi.BI_MEM_LIMIT);
  bi.storeMfn = load<u64>(buf + abi.BI_STORE_MFN);
  bi.storeEvtchn = load<u32>(buf + abi.BI_STORE_EVTCHN);
  bi.consoleEvtchn = load<u32>(buf + abi.BI_CONSOLE_EVTCHN);
  bi.consoleMfn = load<u64>(buf + abi.BI_CONSOLE_MFN);
  bi.bootNs = load<i64>(buf + abi.BI_BOOT_NS);
  cached = bi;
  return bi;
}

/** The command line (xl config `extra=`), exactly as given. */
export function cmdline(): string {
  const n = abi.boot_cmdline(0, 0);
  if (n <= 0) return "";
  const buf = new ArrayBuffer(n);
  const m = abi.boot_cmdline(changetype<usize>(buf), n);
  return String.UTF8.decode(buf.slice(0, min(m, n)));
}

/** The command line split on spaces and tabs, empty words dropped. */
export function args(): string[] {
  const out = new Array<string>();
  const s = cmdline();
  let start = -1;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 32;
    const blank = c == 32 || c == 9 || c == 10;
    if (blank && start >= 0) {
      out.push(s.substring(start, i));
      start = -1;
    } else if (!blank && start < 0) start = i;
  }
  return out;
}
