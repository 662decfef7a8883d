// PLACEHOLDER while the block-device VFS is written: every file operation fails.
import * as c from "./sqlite3";
import * as time from "../time";
import { Device } from "../block";
export function mount(dev: Device, name: string): string { return "vfs: not written yet"; }
export function takeLastError(): string { return ""; }
export function open(name: usize, flags: i32, outFlags: usize): i32 { return -c.CANTOPEN; }
export function close(fid: i32): i32 { return c.OK; }
export function read(fid: i32, buf: usize, amt: i32, off: i64): i32 { return c.IOERR_READ; }
export function write(fid: i32, buf: usize, amt: i32, off: i64): i32 { return c.IOERR_WRITE; }
export function truncate(fid: i32, size: i64): i32 { return c.IOERR_TRUNCATE; }
export function sync(fid: i32, flags: i32): i32 { return c.IOERR_FSYNC; }
export function size(fid: i32, out: usize): i32 { return c.IOERR_FSTAT; }
export function characteristics(fid: i32): i32 { return 0; }
export function remove(name: usize, syncDir: i32): i32 { return c.IOERR_DELETE; }
export function access(name: usize, flags: i32, out: usize): i32 { store<i32>(out, 0); return c.OK; }
export function randomness(n: i32, out: usize): i32 { memory.fill(out, 0x5a, n); return n; }
export function sleep(us: i32): i32 { return us; }
export function julianMs(): i64 { return time.wall() / 1_000_000 + 210_866_760_000_000; }
