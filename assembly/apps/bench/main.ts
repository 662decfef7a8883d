// bench: the unikernel side of `npm run bench`. The same wasm runs under Xen and
// in the Node harness; tools/bench.ts reads the "bench:" lines it prints.
//
// Command line: a list of jobs, run in order:
//   entry        guest time from the host's entry point to this line of main
//   alloc:N      N strings of 8..135 characters, a window of 1,024 kept alive (GC work);
//                also the elapsed time at every tenth of N (alloc_ms_at_<count>), for the
//                time-vs-allocations curve of the paper's Figure 4
import { console, boot, time } from "../../runtime";

const mainNs = time.monotonic(); // first statement: as close to "main" as the app gets

function report(name: string, value: f64, unit: string): void {
  console.log("bench: " + name + " " + value.toString() + " " + unit);
}

function allocLoop(n: i32): void {
  const window = new Array<string>(1024);
  let t0 = time.monotonic();
  let bytes: i64 = 0;
  const step = n >= 10 ? n / 10 : n;
  let mark = step;
  for (let i = 0; i < n; i++) {
    if (i == mark) {
      report("alloc_ms_at_" + i.toString(), <f64>(time.monotonic() - t0) / 1e6, "ms");
      mark += step;
      // Block for a moment, so dom0 (on the test bed's one CPU with us) runs its
      // toolstack promptly; the pause is not counted.
      const b = time.monotonic();
      time.sleep(time.NS_PER_MS);
      t0 += time.monotonic() - b; // not counted
    }
    const len = 8 + ((i * 7919) & 127); // sizes spread over 8..135 chars
    const s = "x".repeat(len);
    window[i & 1023] = s;
    bytes += len;
  }
  const dt = time.monotonic() - t0;
  report("alloc_ns_per_string", <f64>dt / <f64>n, "ns");
  report("alloc_total_ms", <f64>dt / 1e6, "ms");
  report("alloc_mib", <f64>(bytes * 2) / 1048576.0, "MiB");
}

const jobs = boot.args();
for (let i = 0; i < jobs.length; i++) {
  const job = jobs[i];
  if (job == "entry") report("entry_to_main_us", <f64>(mainNs - boot.info().bootNs) / 1e3, "us");
  else if (job.startsWith("alloc:")) allocLoop(I32.parseInt(job.substring(6)));
  else console.log("bench: unknown job " + job);
}
console.log("bench: done");
