import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Each test file runs in its own process ('forks'), so /proc/self/status VmLck
  // only sees what that file locked.
  test: { include: ['test/**/*.test.mjs'], pool: 'forks', testTimeout: 60_000 },
});
