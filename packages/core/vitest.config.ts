import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // package.json "imports" point #key-files, #gcm and #primes at dist; tests run the sources (one copy
  // of every class), and without an alias a test would silently get the fallback (two-prime keys).
  resolve: {
    alias: {
      '#key-files': fileURLToPath(new URL('./src/keys/files/node.ts', import.meta.url)),
      '#gcm': fileURLToPath(new URL('./src/crypto/gcm/node.ts', import.meta.url)),
      '#primes': fileURLToPath(new URL('./src/crypto/primes/node.ts', import.meta.url)),
    },
  },
  test: { include: ['test/**/*.test.ts'], testTimeout: 60_000 },
});
