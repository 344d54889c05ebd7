import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // RSA-4096 key generation and loopback servers share two cores: one file at a time.
    fileParallelism: false,
  },
});
