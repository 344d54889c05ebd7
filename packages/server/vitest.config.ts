import { defineConfig } from 'vitest/config';

export default defineConfig({
  // globalSetup builds dist/ once, for the tests that spawn the CLI.
  test: { include: ['test/**/*.test.ts'], globalSetup: ['test/build-cli.ts'], testTimeout: 60_000, hookTimeout: 120_000 },
});
