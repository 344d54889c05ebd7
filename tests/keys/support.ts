/** Shared plumbing for the key-lifecycle tests: temp key directories and the x-public-key of each request. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NomyoServer } from '@nomyo/server';
import { secureRequests } from '../integration/support.js';

import { clientFor as integrationClient } from '../integration/support.js';
import type { SecureChatCompletionOptions } from '@nomyo/core';

export { hello, routerWithHangingKeyRefresh, secureRequests, startTestServer } from '../integration/support.js';

/**
 * A client for `server` that sends protocol v1: these tests are about the client's key pair, which
 * only v1 uses (v2 needs none, see protocol-memory.test.ts). `protocol` may still be overridden.
 */
export function clientFor(server: NomyoServer, options: SecureChatCompletionOptions = {}) {
  return integrationClient(server, { protocol: 1, ...options });
}

export const KEYFILES_DIR = fileURLToPath(new URL('../../test-vectors/keyfiles/', import.meta.url));
export const CLI = fileURLToPath(new URL('../node_modules/@nomyo/core/dist/cli/nomyo.js', import.meta.url));

/** A fresh temp directory for `fn`, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'nomyo-keys-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The client public key (PEM) each secure request carried, in order. */
export function publicKeysSent(server: NomyoServer): string[] {
  return secureRequests(server).map((r) => decodeURIComponent(String(r.headers['x-public-key'])));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
