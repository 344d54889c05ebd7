/**
 * The same-verdict promise at the client's entry point: whatever a proxy does to an answer body, the
 * client (which reads it into one buffer, locates its ciphertext, and opens a large one in place in
 * secure memory) gives the verdict of the exact way, openWith on parse(decode(body)) with the
 * client's key, and makes as many RSA operations with that key. v1, whose client key the test can
 * hold; v2 answers take the same openBody with another opener (packages/core/test/protocol/body/
 * open.differential.test.ts compares both openers there). Small and large answers, damage drawn by
 * fast-check from a fixed seed: the same corpus every run.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openWith, parseJsonPackage, v1Opener } from '@nomyo/core/protocol';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, routerBehindProxy } from './support.js';

const CORPUS_SEED = 0x6e6f6d79;
const started = routerBehindProxy();
afterEach(() => vi.restoreAllMocks());

/** RSA private-key operations with `key` while `run` runs (the router in this process makes its own, with its own key). */
async function withRsaCount<T>(key: CryptoKey, run: () => Promise<T>): Promise<{ result: T; rsa: number }> {
  const unwrap = vi.spyOn(crypto.subtle, 'unwrapKey');
  const decrypt = vi.spyOn(crypto.subtle, 'decrypt');
  try {
    const result = await run();
    return { result, rsa: unwrap.mock.calls.filter((c) => c[2] === key).length + decrypt.mock.calls.filter((c) => c[1] === key).length };
  } finally {
    unwrap.mockRestore();
    decrypt.mockRestore();
  }
}

const message = (err: unknown) => `${(err as Error).name}: ${(err as Error).message}`;

describe.each([
  ['a small answer', 'a short prompt'],
  ['a large answer (opened in place, in secure memory)', 'a long prompt. '.repeat(30_000)],
])('%s, damaged anywhere by a proxy: the client’s verdict is the exact way’s', (_what, content) => {
  it('(property, fixed corpus)', async () => {
    const { proxy } = started;
    const client = clientFor({ url: proxy.url } as NomyoServer, { protocol: 1, maxRetries: 0 });
    const { privateKey } = await client.client.keyPair();
    const ask = { model: 'm', messages: [{ role: 'user', content }] };
    // One undamaged answer first: its body's length bounds where the damage goes.
    let length = 0;
    proxy.hooks = { answer: (answer, request) => void (request.method === 'POST' && (length = answer.body.length)) };
    await client.create(ask);
    // And the engine probe of the first key that does not unwrap (core's rsa.ts) happens outside the counts.
    const unwrappable = { version: '1.0', algorithm: 'hybrid-aes256-rsa4096', encrypted_payload: { ciphertext: '', nonce: 'A'.repeat(16), tag: `${'A'.repeat(22)}==` }, encrypted_aes_key: 'AAAA' };
    await openWith(v1Opener(privateKey), unwrappable).catch(() => undefined);
    const damage = fc.constantFrom(0x00, 0x0a, 0x20, 0x22, 0x2b, 0x2d, 0x2f, 0x3d, 0x41, 0x5c, 0x7b, 0x7d, 0x80, 0xc3, 0xff);
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: length - 1 }), damage), { minLength: 1, maxLength: 3 }), async (hits) => {
        let sent: Buffer | undefined;
        proxy.hooks = {
          answer: (answer, request) => {
            if (request.method !== 'POST' || answer.status !== 200) return;
            for (const [at, byte] of hits) answer.body[Math.min(at, answer.body.length - 1)] = byte;
            sent = Buffer.from(answer.body);
          },
        };
        const client = await withRsaCount(privateKey, () => clientOutcome());
        // The exact way on the very bytes the client got: decoded as fetch's text() decodes them.
        const exact = await withRsaCount(privateKey, async () => {
          try {
            const pkg = parseJsonPackage(new TextDecoder().decode(sent));
            const { plaintext } = await openWith(v1Opener(privateKey), pkg);
            plaintext.fill(0);
            return 'opened';
          } catch (err) {
            return message(err);
          }
        });
        expect(client).toEqual(exact);
        if (exact.result !== 'opened') refused++;
      }),
      { numRuns: 25, seed: CORPUS_SEED },
    );
    // The corpus checks refusals, not only answers that open despite the damage.
    expect(refused).toBeGreaterThan(0);
    await client.dispose();

    async function clientOutcome(): Promise<string> {
      try {
        await client.create(ask);
        return 'opened';
      } catch (err) {
        // The completion check comes after opening: an answer that opened but is no completion opened all the same.
        return /not a chat\.completion|not UTF-8 JSON/.test((err as Error).message) ? 'opened' : message(err);
      }
    }
  });
});
