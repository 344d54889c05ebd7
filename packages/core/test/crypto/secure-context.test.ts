/**
 * A page that is no secure context (http on a host other than localhost) has crypto.getRandomValues
 * but neither crypto.subtle nor crypto.randomUUID: every entry point fails with the library's
 * SecurityError saying so, never a TypeError of whichever it met first.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecureChatCompletion, SecurityError, createSecureFetch } from '../../src/index.js';

const NO_SECURE_CONTEXT = /secure context \(HTTPS\) is required/;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('outside a secure context', () => {
  const insecureCrypto = () => {
    const real = globalThis.crypto;
    vi.stubGlobal('crypto', { getRandomValues: real.getRandomValues.bind(real) });
  };
  const messages = [{ role: 'user' as const, content: 'hi' }];
  let fetched = 0;
  const fetch = async () => {
    fetched++;
    return new Response('no', { status: 500 });
  };

  it.each([false, true])('create({ stream: %s }) is refused with a SecurityError before anything is sent', async (stream) => {
    insecureCrypto();
    const client = new SecureChatCompletion({ baseUrl: 'https://router.example', fetch, maxRetries: 0 });
    const err = await client.create({ model: 'm', messages, stream }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(NO_SECURE_CONTEXT);
    expect(fetched).toBe(0);
  });

  it("createSecureFetch's fetch is refused with a SecurityError before anything is sent", async () => {
    insecureCrypto();
    const secureFetch = createSecureFetch({ baseUrl: 'https://router.example', fetch, maxRetries: 0 });
    const err = await secureFetch('https://router.example/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(NO_SECURE_CONTEXT);
    expect(fetched).toBe(0);
  });
});
