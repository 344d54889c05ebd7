/** Shared by the SDK tests: the router helpers plus a secure fetch pointed at a router. */
import type { NomyoServer } from '@nomyo/server';
import { createSecureFetch, type SecureFetchOptions } from '@nomyo/core';
import { KEY_SIZE } from './wire.js';

export * from './wire.js';

/** A secure fetch for `server`; the SDK's baseURL can be anything, only the path is looked at. */
export function secureFetchFor(server: NomyoServer, options: SecureFetchOptions = {}) {
  return createSecureFetch({ routerUrl: server.url, allowHttp: true, keySize: KEY_SIZE, ...options });
}

/**
 * The SDK suites run twice, with the default `protocol: 'auto'`: against the reference router
 * (which advertises v2, so v2 is sent) and against a v1-only one (`--protocol 1`, as routers
 * deployed before v2), where the same client falls back to v1.
 */
export const ROUTER_PROTOCOLS = [
  { protocol: 2, version: '2.0', router: {} },
  { protocol: 1, version: '1.0', router: { protocol: 1 } },
] as const;

/** The SDK side never talks to this host: if anything went there in plaintext, the test would hang or fail. */
export const PLACEHOLDER_BASE_URL = 'https://router.invalid/v1';
