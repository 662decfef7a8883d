import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Every app is compiled once, before any test file runs.
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 20 * 60_000, // a cold test-bed set-up downloads and builds
    // Test-bed files boot QEMU: never two at once on a 2-core machine.
    fileParallelism: false,
  },
});
