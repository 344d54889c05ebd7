import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // package.json "imports" point #key-files at dist; tests run the sources, so one copy of every class.
  resolve: {
    alias: {
      '#key-files': fileURLToPath(new URL('./src/keys/files/node.ts', import.meta.url)),
      '#gcm': fileURLToPath(new URL('./src/crypto/gcm/node.ts', import.meta.url)),
    },
  },
  test: { include: ['test/**/*.test.ts'], testTimeout: 60_000 },
});
