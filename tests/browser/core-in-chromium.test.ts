/**
 * @nomyo/core in a real browser: headless Chromium loads the example page, which runs an encrypted
 * chat completion against the reference router across origins (CORS) and shows the answer.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { startExample } from '../../examples/browser/serve.mjs';
import { completionRequests, expectNoPlaintextOnWire, expectSealed, startRouter } from '../sdk/wire.js';
import { bundleCore, type CoreBundle } from './bundle.js';
import { launchChromium, type Browser } from './chromium.js';

const SECRET = 'browser secret: the cake is in the oven';

let bundle: CoreBundle;
let router: NomyoServer;
let browser: Browser | undefined;

beforeAll(async () => {
  bundle = await bundleCore();
  router = await startRouter();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await router?.close();
});
beforeEach(() => router.clearRequests());

describe('the browser bundle', () => {
  it('pulls in no Node built-ins and no Node-only files', () => {
    expect(bundle.code).not.toMatch(/\bfrom\s*["']node:|import\(\s*["']node:|\brequire\(/);
    expect(bundle.inputs.filter((f) => /\/(cli|node)\/|key-?files?/.test(f))).toEqual([]);
    expect(bundle.code).toMatch(/SecureChatCompletion/);
  });
});

describe.each([
  { name: 'bundled with esbuild', bundled: true },
  { name: 'as unbundled ES modules from dist/', bundled: false },
])('a page running @nomyo/core $name', ({ bundled }) => {
  it('shows the decrypted answer; the wire carries only a package; the key cannot be exported', async () => {
    const example = await startExample({ coreBundle: bundled ? bundle.code : undefined });
    const page = await browser!.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => msg.type() === 'error' && problems.push(`console: ${msg.text()}`));
    try {
      await page.goto(`${example.url}/?router=${encodeURIComponent(router.url)}`, { timeout: 30_000 });
      await page.fill('#message', SECRET);
      await page.click('button[type=submit]');
      await page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 90_000 });
      const status = await page.textContent('#status');
      expect(problems, status ?? '').toEqual([]);
      expect(await page.getAttribute('body', 'data-state'), status ?? '').toBe('done');
      expect(await page.textContent('#answer')).toBe(`echo: ${SECRET}`);
      expect(await page.textContent('#meta')).toMatch(/^encrypted: true/);
      // Browsers have no prime generator for core (and Chrome's BoringSSL takes no multi-prime key): Web Crypto's own two-prime pair.
      expect(await page.textContent('#key')).toMatch(/RSA-4096, 2 primes\): extractable=false, export refused \(InvalidAccessError\)/);

      // Asked directly in the page too: the key is usable for decryption but never readable.
      const keyCheck = await page.evaluate(async () => {
        const chat = (globalThis as unknown as { nomyoExample: { chat: { client: { keyPair(): Promise<{ privateKey: CryptoKey }> } } } }).nomyoExample.chat;
        const { privateKey } = await chat.client.keyPair();
        const outcomes: string[] = [];
        for (const format of ['pkcs8', 'jwk'] as const) {
          outcomes.push(await crypto.subtle.exportKey(format, privateKey).then(() => 'exported', (e: Error) => e.name));
        }
        return { extractable: privateKey.extractable, outcomes, secure: isSecureContext };
      });
      expect(keyCheck).toEqual({ extractable: false, outcomes: ['InvalidAccessError', 'InvalidAccessError'], secure: true });

      const posts = completionRequests(router);
      expect(posts).toHaveLength(1);
      expect(posts[0]!.headers.origin).toBe(example.url); // a cross-origin call, allowed by CORS
      expectSealed(posts[0]!.body, [SECRET, 'cake']);
      expectNoPlaintextOnWire(router, [SECRET, 'cake']);
    } finally {
      await page.close().catch(() => undefined);
      await example.close();
    }
  });
});
