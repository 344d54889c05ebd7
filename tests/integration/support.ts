/** Shared plumbing for the integration tests: a reference server on loopback and clients pointed at it. */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { SecureChatCompletion, type SecureChatCompletionOptions } from '@nomyo/core';
import { startServer, type NomyoServer, type ServerOptions } from '@nomyo/server';
import { VECTOR_KEY_FILE } from '@nomyo/test-support/keys';
import { startProxy, type Proxy } from './proxy.js';

/** The shared vector key, as a 0600 key file: the server loads it instead of generating RSA-4096 per test. */
export const SERVER_KEY_FILE = VECTOR_KEY_FILE;

export function startTestServer(options: ServerOptions = {}): Promise<NomyoServer> {
  return startServer({ keyFile: SERVER_KEY_FILE, recordRequests: true, ...options });
}

/** A client for `server` over plain HTTP on loopback, with a fast 2048-bit key unless told otherwise. */
export function clientFor(server: NomyoServer, options: SecureChatCompletionOptions = {}): SecureChatCompletion {
  return new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, keySize: 2048, ...options });
}

export const hello = { model: 'test-model', messages: [{ role: 'user', content: 'Hello, secret world' }] };

export function secureRequests(server: NomyoServer) {
  return server.requests.filter((r) => r.path === '/v1/chat/secure_completion');
}

export const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/**
 * A reference router and an intercepting proxy in front of it (what a TLS-terminating gateway can do),
 * started before the file's tests and closed after them. Read `router` and `proxy` inside tests.
 */
export function routerBehindProxy(options: ServerOptions = {}): { readonly router: NomyoServer; readonly proxy: Proxy } {
  const started = {} as { router: NomyoServer; proxy: Proxy };
  beforeAll(async () => {
    started.router = await startTestServer(options);
    started.proxy = await startProxy(started.router.url);
  });
  afterAll(async () => {
    await started.proxy?.close();
    await started.router?.close();
  });
  return started;
}

/**
 * A router whose key's first fetch answers and whose later fetches (a refresh) wait 5 s, cut short
 * when the client hangs up; every secure completion gets the plain 400 of a key it no longer holds,
 * so a client refreshes the key after its first attempt. `keyFetches()` counts the key's fetches.
 */
export async function routerWithHangingKeyRefresh(): Promise<{ router: NomyoServer; keyFetches: () => number }> {
  let fetches = 0;
  const router = await startTestServer({
    interceptor: (request) => {
      if (request.path === '/pki/public_key') return fetches++ === 0 ? undefined : { delayMs: 5_000 };
      return { status: 400, body: { detail: 'decryption failed: the package is not authentic or not for this key' } };
    },
  });
  return { router, keyFetches: () => fetches };
}
