// The app's side of the SQLite module's VFS imports (sqlite/glue.c, module "app"):
// the build adds this file as a second entry to every app that uses SQLite
// (app.json "native": ["sqlite"]), so these functions become wasm exports. Each forwards to
// vfs.ts; every result is a SQLite result code (sqlite3.ts), pointers are offsets
// in the shared linear memory.
import * as vfs from "./vfs";

export function morgana_vfs_open(name: usize, flags: i32, outFlags: usize): i32 {
  return vfs.open(name, flags, outFlags);
}
export function morgana_vfs_close(fid: i32): i32 {
  return vfs.close(fid);
}
export function morgana_vfs_read(fid: i32, buf: usize, amt: i32, off: i64): i32 {
  return vfs.read(fid, buf, amt, off);
}
export function morgana_vfs_write(fid: i32, buf: usize, amt: i32, off: i64): i32 {
  return vfs.write(fid, buf, amt, off);
}
export function morgana_vfs_truncate(fid: i32, size: i64): i32 {
  return vfs.truncate(fid, size);
}
export function morgana_vfs_sync(fid: i32, flags: i32): i32 {
  return vfs.sync(fid, flags);
}
export function morgana_vfs_size(fid: i32, out: usize): i32 {
  return vfs.size(fid, out);
}
export function morgana_vfs_characteristics(fid: i32): i32 {
  return vfs.characteristics(fid);
}
export function morgana_vfs_delete(name: usize, syncDir: i32): i32 {
  return vfs.remove(name, syncDir);
}
export function morgana_vfs_access(name: usize, flags: i32, out: usize): i32 {
  return vfs.access(name, flags, out);
}
export function morgana_vfs_randomness(n: i32, out: usize): i32 {
  return vfs.randomness(n, out);
}
export function morgana_vfs_sleep(us: i32): i32 {
  return vfs.sleep(us);
}
export function morgana_vfs_time(): i64 {
  return vfs.julianMs();
}
