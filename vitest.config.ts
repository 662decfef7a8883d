import { configDefaults, defineConfig } from "vitest/config";

/** Test files that boot the Xen test bed (QEMU) or need its set-up (Xen and kernel downloads). */
export const TESTBED_TESTS = [
  "test/xen/**", // Morgana images under real Xen
  "test/testbed/testbed.test.ts", // the test bed itself, booted
  "test/bench/linux.test.ts", // the Linux baseline guest: built from the test bed's kernel packages
];

// `vitest run --mode harness` (npm run test:harness): everything else, no QEMU.
export default defineConfig(({ mode }) => ({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [...configDefaults.exclude, ...(mode === "harness" ? TESTBED_TESTS : [])],
    // Every app is compiled once, before any test file runs.
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 20 * 60_000, // a cold test-bed set-up downloads and builds
    // Test-bed files boot QEMU: never two at once on a 2-core machine.
    fileParallelism: false,
  },
}));
