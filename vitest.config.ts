import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Builds the web console for test/console when dist/console is missing or stale.
    globalSetup: ["test/console/global-setup.ts"],
  },
});
