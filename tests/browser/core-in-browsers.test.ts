/**
 * @nomyo/core in real browsers: Chromium, Firefox and WebKit each load the example page, which runs
 * encrypted chat completions against reference routers across origins (CORS) and shows the
 * answers: protocol 2 against the default router (no client key pair), then protocol 1 against a
 * v1-only router (a key pair made in the page, which the page cannot read); and streamed answers,
 * token by token as the router seals them (directly, and through nginx over HTTP/2 with TLS, as
 * routers are deployed), stopped by the page's abort. Engines run one after
 * another, each launched once for all its tests; a missing engine fails with its install command.
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { V2_STREAM_ALGORITHM } from '@nomyo/core/protocol';
import type { NomyoServer, RequestRecord, ResponseRecord } from '@nomyo/server';
import { startExample } from '../../examples/browser/serve.mjs';
import { ENGINES, ENGINE_NAMES, type EngineName } from '../../scripts/browsers.mjs';
import { completionRequests, expectNoPlaintextOnWire, expectSealed, startRouter } from '../sdk/wire.js';
import { bundleCore, type CoreBundle } from './bundle.js';
import { launchEngine, type Engine, type PageDriver } from './engines.js';
import { streamInPage } from './stream-in-page.js';
import { supportTable } from '../runtimes/support-table.js';
import { makeTestCertificates, type TestCertificates } from '@nomyo/test-support/tls';
import { startNginx, type Nginx } from '../nginx/nginx.js';

let bundle: CoreBundle;
let routerV2: NomyoServer; // the reference router as it ships: protocols 1 and 2
let routerV1: NomyoServer; // as routers deployed before protocol 2
let routerSlow: NomyoServer; // the echo model streams one word every ECHO_DELAY_MS
let tls: TestCertificates;
let nginxH2: Nginx; // nginx in front of routerSlow, as deployed: TLS, HTTP/2 to browsers, default buffering

// Long enough apart that a browser holding the body back (until its end, or a buffer's worth) shows.
const ECHO_DELAY_MS = 150;
const STREAMED = 'please stream these eight words back to me';
// Aborted after its first word: the longer the rest, the surer the router is still making it then.
const ABORTED = 'stop this answer after its first word, for the rest of it must never be made at all';

beforeAll(async () => {
  bundle = await bundleCore();
  routerV2 = await startRouter();
  routerV1 = await startRouter({ protocol: 1 });
  routerSlow = await startRouter({ echoDelayMs: ECHO_DELAY_MS });
  tls = makeTestCertificates();
  nginxH2 = await startNginx({ router: routerSlow.url, tls, http2: true });
});
afterAll(async () => {
  await nginxH2?.close();
  tls?.cleanup();
  await routerV2?.close();
  await routerV1?.close();
  await routerSlow?.close();
});

describe('the browser bundle', () => {
  it('pulls in no Node built-ins and no Node-only files', () => {
    expect(bundle.code).not.toMatch(/\bfrom\s*["']node:|import\(\s*["']node:|\brequire\(/);
    expect(bundle.inputs.filter((f) => /\/(cli|node)\/|key-?files?/.test(f))).toEqual([]);
    expect(bundle.code).toMatch(/SecureChatCompletion/);
  });
});

describe.each(ENGINE_NAMES)('in %s', (name) => {
  // Launched by the first test that needs it, so a missing engine fails every test with its message.
  let launched: Promise<Engine> | undefined;
  const engine = () => (launched ??= launchEngine(name));
  const timings: string[] = [];

  beforeEach(() => {
    routerV2.clearRequests();
    routerV1.clearRequests();
    routerSlow.clearRequests();
  });
  afterAll(async () => {
    const browser = await launched?.catch(() => undefined);
    // One line per engine, for the closing note of a CI run.
    if (browser && timings.length > 0) console.info(`${name} (${browser.version}): ${timings.join('; ')}`);
    await browser?.close();
  });

  it("is the version the README's support table names for it", async () => {
    const { version } = await engine();
    const title = ENGINES[name].title;
    const row = supportTable().get(title);
    expect(row, `README support table row ${title}`).toBeDefined();
    expect(row!.version, `${title} ran as ${version}`).toMatch(readmeVersion(name, version));
  });

  describe.each([
    { label: 'bundled with esbuild', bundled: true },
    { label: 'as unbundled ES modules from dist/', bundled: false },
  ])('a page running @nomyo/core $label', ({ bundled }) => {
    it('shows the decrypted answers over protocols 2 and 1, streamed and whole; the wire carries only packages; the v1 key cannot be exported', async () => {
      const browser = await engine();
      const example = await startExample({ coreBundle: bundled ? bundle.code : undefined });
      const page = await browser.newPage();
      try {
        await page.goto(`${example.url}/?router=${encodeURIComponent(routerV2.url)}`);
        await page.evaluate(recordRequestTimes);

        // Protocol 2, the default router: nothing to generate in the page, not even for the first request.
        // The page streams unless told not to: the first answer streamed, the second whole.
        const v2 = [await ask(page, 'v2 secret: the cake is in the oven', true), await ask(page, 'v2 secret: the key is under the mat', false)];
        expect(v2[0]!.meta).toMatch(/^protocol 2 \(aes256gcm-hkdf-sha256-stream\), streamed by the router, /);
        expect(v2[1]!.meta).toMatch(/^encrypted: true, protocol 2 \(aes256gcm-hkdf-sha256\), whole answer, /);
        expect(await text(page, '#key')).toMatch(/^no client key pair/);

        // Protocol 1: the page's client for this router makes an RSA-4096 pair on its first request.
        await page.fill('#router', routerV1.url);
        // v1 never streams: asked to, the client gets the whole answer and hands it over as chunks.
        const v1 = [await ask(page, 'v1 secret: the cake is in the fridge', true), await ask(page, 'v1 secret: the key is in the drawer', false)];
        expect(v1[0]!.meta).toMatch(/^protocol 1 \(hybrid-aes256-rsa4096\), answered whole, shown as chunks, /);
        expect(v1[1]!.meta).toMatch(/^encrypted: true, protocol 1 \(hybrid-aes256-rsa4096\), whole answer, /);
        // No browser has a prime generator for core (and Chrome's BoringSSL takes no multi-prime key): Web Crypto's own two-prime pair.
        // Every engine refuses the export with the same DOMException name.
        expect(await text(page, '#key')).toMatch(/RSA-4096, 2 primes\): extractable=false, export refused \(InvalidAccessError\)/);
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

        for (const [router, version, answers] of [[routerV2, '2.0', v2], [routerV1, '1.0', v1]] as const) {
          const posts = completionRequests(router);
          expect(posts).toHaveLength(2);
          for (const [i, post] of posts.entries()) {
            expect(post.headers.origin).toBe(example.url); // a cross-origin call, allowed by CORS
            expectSealed(post.body, [answers[i]!.secret, 'the cake', 'the key'], version);
          }
          expectNoPlaintextOnWire(router, [...answers.map((a) => a.secret), 'the cake', 'the key']);
        }
        const ms = (answers: Answer[]) => `first request (streamed) ${Math.round(answers[0]!.ms)} ms, next (whole) ${Math.round(answers[1]!.ms)} ms`;
        timings.push(`${bundled ? 'bundled' : 'unbundled'}: protocol 2 ${ms(v2)}; protocol 1 ${ms(v1)} (the first with RSA-4096 key generation)`);
      } finally {
        await page.close();
        await example.close();
      }
    });
  });
  // WebKitGTK drops an RSA-OAEP message's leading zero bytes: one v1 answer in 256 used to fail there.
  // Only there are the zeros put back: elsewhere a sealed key that is not 32 bytes is refused.
  it('opens v1 answers whose AES key starts with a zero byte; puts back dropped zeros only in an engine that drops them', async () => {
    await onCorePage(await engine(), async (page, coreUrl) => {
      const spki = await page.evaluate(async () => {
        const pair = await crypto.subtle.generateKey(
          { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
          false,
          ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'], // as core's own client keys
        );
        (globalThis as unknown as { zeroTestKey: CryptoKey }).zeroTestKey = pair.privateKey;
        return btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey))));
      });
      const packages = [
        ...Array.from({ length: 8 }, (_, i) => packageWithLeadingZeroKey(spki, `answer ${i}`)),
        // What such an engine hands back: the zero left out of what is sealed.
        packageWithLeadingZeroKey(spki, 'answer 8', 31),
      ];
      const opened = await page.evaluate(async (coreUrl: string, list: unknown[]) => {
        // Built from a string: vitest would rewrite an import() written here, and this runs in the page.
        const load = new Function('url', 'return import(url)') as (url: string) => Promise<{ openPackage(p: unknown, k: CryptoKey): Promise<Uint8Array> }>;
        const { openPackage } = await load(coreUrl);
        const key = (globalThis as unknown as { zeroTestKey: CryptoKey }).zeroTestKey;
        return Promise.all(list.map((p) => openPackage(p, key).then((b) => new TextDecoder().decode(b), (e: Error) => `${e.name}: ${e.message}`)));
      }, `${coreUrl}/protocol.js`, packages);
      const short = name === 'webkit' ? 'answer 8' : 'SecurityError: decryption failed: the package is not authentic or not for this key';
      expect(opened).toEqual([...Array.from({ length: 8 }, (_, i) => `answer ${i}`), short]);
    });
  });
  // Answers of 16 KiB and more are opened from their bytes (protocol/package-bytes.ts), in browsers with Web Crypto.
  it('sends a 1 MiB prompt and opens its 1 MiB answer, over protocols 2 and 1', async () => {
    await onCorePage(await engine(), async (page, coreUrl) => {
      const results = await page.evaluate(async (coreUrl: string, routers: string[]) => {
        type Chat = { create(p: unknown): Promise<{ choices: Array<{ message: { content: string } }>; _metadata: { protocol: number } }>; dispose(): Promise<void> };
        const load = new Function('url', 'return import(url)') as (url: string) => Promise<{ SecureChatCompletion: new (o: unknown) => Chat }>;
        const { SecureChatCompletion } = await load(coreUrl);
        const prompt = 'Large prompt, sealed in the page. '.repeat(32768); // 1 MiB
        const out: Array<{ protocol: number; same: boolean }> = [];
        for (const baseUrl of routers) {
          const chat = new SecureChatCompletion({ baseUrl, allowHttp: true, keySize: 2048 });
          const answer = await chat.create({ model: 'echo', messages: [{ role: 'user', content: prompt }] });
          out.push({ protocol: answer._metadata.protocol, same: answer.choices[0]!.message.content === `echo: ${prompt}` });
          await chat.dispose();
        }
        return out;
      }, `${coreUrl}/index.js`, [routerV2.url, routerV1.url]);
      expect(results).toEqual([{ protocol: 2, same: true }, { protocol: 1, same: true }]);
      expect(await page.errors()).toEqual([]);
    });
  });

  describe('a page running the core bundle, streaming (protocol 2, across origins)', () => {
    it('delivers each token as its sealed record arrives, as far apart as the model made them; the request went sealed', async () => {
      const { run, origin } = await onBundlePage(await engine(), (page, coreUrl) => page.evaluate(streamInPage, coreUrl, routerSlow.url, STREAMED, false));
      expect(run.end).toEqual({ ok: true });
      expect(run.metadata).toEqual({ payload_id: expect.any(String), protocol: 2, streamed: true, encryption_algorithm: V2_STREAM_ALGORITHM });
      expect(run.chunks.map((c) => c.content ?? '').join('')).toBe(`echo: ${STREAMED}`);
      // One word a chunk, ECHO_DELAY_MS apart at the router. A browser that held the body back (fetch
      // resolving only at its end, or pieces gathered into larger ones) would hand them over together:
      // at least half the spacing must survive, on a loaded machine too.
      const words = run.chunks.filter((c) => c.content);
      const span = words.at(-1)!.ms - words[0]!.ms;
      const ms = (n: number) => `${Math.round(n)} ms`;
      timings.push(
        `streamed: header ${ms(run.startedMs)}, first word ${ms(words[0]!.ms)}, last ${ms(words.at(-1)!.ms)} ` +
          `(span ${ms(span)} for ${words.length} words ${ECHO_DELAY_MS} ms apart)`,
      );
      expect(span).toBeGreaterThanOrEqual((words.length - 2) * ECHO_DELAY_MS * 0.5);

      const [post, ...others] = completionRequests(routerSlow);
      expect(others).toEqual([]);
      expect(post!.headers.origin).toBe(origin);
      expectSealed(post!.body, [STREAMED, 'eight words'], '2.0');
      const response = await responseOf(post!);
      expect(response).toMatchObject({ status: 200, outcome: 'answered' });
      expect(response.headers['Content-Type']).toMatch(/^text\/event-stream/);
      // The whole event stream as sent (recorded once it ended): records only, no word of the answer.
      expect(new TextDecoder().decode(response.body)).toMatch(/^event: nomyo-stream\n[^]*event: nomyo-final\ndata: [A-Za-z0-9+/=]+\n\n$/);
      expectNoPlaintextOnWire(routerSlow, [STREAMED, 'eight words']);
    });

    it('through nginx offering HTTP/2 (TLS, default buffering): each token as the model makes it, and the stream went over HTTP/2', async () => {
      const logged = nginxH2.accessLog().length; // the engines before this one were logged too
      const { run } = await onBundlePage(await engine(), (page, coreUrl) => page.evaluate(streamInPage, coreUrl, nginxH2.url, STREAMED, false));
      expect(run.end, nginxH2.errorLog()).toEqual({ ok: true });
      expect(run.metadata).toMatchObject({ protocol: 2, streamed: true });
      expect(run.chunks.map((c) => c.content ?? '').join('')).toBe(`echo: ${STREAMED}`);
      const words = run.chunks.filter((c) => c.content);
      const span = words.at(-1)!.ms - words[0]!.ms;
      timings.push(`through nginx over HTTP/2: first word ${Math.round(words[0]!.ms)} ms, span ${Math.round(span)} ms`);
      expect(span).toBeGreaterThanOrEqual((words.length - 2) * ECHO_DELAY_MS * 0.5);
      // nginx logs a request when it ends: the sealed POST (and its CORS preflight) came over HTTP/2.
      await expect.poll(() => [...nginxH2.accessLog().slice(logged).matchAll(/"POST \/v1\/chat\/secure_completion (HTTP\/[\d.]+)"/g)].map((m) => m[1]), { timeout: 5_000 }).toEqual(['HTTP/2.0']);
      expect(completionRequests(routerSlow)).toHaveLength(1);
    });

    it('stream.controller.abort() ends the loop with APIUserAbortError and closes the connection', async () => {
      const { run } = await onBundlePage(await engine(), (page, coreUrl) => page.evaluate(streamInPage, coreUrl, routerSlow.url, ABORTED, true));
      const after = run.chunks.filter((c) => c.ms > run.abortedMs!).length;
      timings.push(`aborted after the first word at ${Math.round(run.abortedMs!)} ms (${after} chunks after it)`);
      expect(run.end).toMatchObject({ ok: false, name: 'APIUserAbortError', code: 'ERR_NOMYO_ABORTED', isAPIUserAbortError: true });
      const received = run.chunks.map((c) => c.content ?? '').join('');
      expect(`echo: ${ABORTED}`.startsWith(received) && received.length < `echo: ${ABORTED}`.length, received).toBe(true);
      // The router saw the connection close before its stream's final record: the model was stopped.
      const [post] = completionRequests(routerSlow);
      expect(await responseOf(post!)).toMatchObject({ status: 200, outcome: 'aborted' });
    });
  });
});

/** Runs `fn` on the example page with core's esbuild bundle at `${coreUrl}/index.js`, then closes both. */
async function onBundlePage<T>(browser: Engine, fn: (page: PageDriver, coreUrl: string) => Promise<T>): Promise<{ run: T; origin: string }> {
  const example = await startExample({ coreBundle: bundle.code });
  const page = await browser.newPage();
  try {
    await page.goto(`${example.url}/`);
    const run = await fn(page, `${example.url}/core/index.js`);
    expect(await page.errors()).toEqual([]);
    return { run, origin: example.url };
  } finally {
    await page.close();
    await example.close();
  }
}

/** A request's response record, once the router has finished with it (a stream's, once it ended). */
async function responseOf(record: RequestRecord): Promise<ResponseRecord> {
  const deadline = performance.now() + 10_000;
  while (!record.response) {
    if (performance.now() > deadline) throw new Error(`request ${record.seq} still open 10 s later: the router never saw its end`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return record.response;
}

interface Answer {
  secret: string;
  meta: string | null;
  /** From the page going busy to the answer shown, measured in the page. */
  ms: number;
}

/** Sends `secret` from the page as a user would, its answer streamed or not, and checks the answer it shows. */
async function ask(page: PageDriver, secret: string, stream: boolean): Promise<Answer> {
  const before = await page.evaluate(() => (globalThis as unknown as { nomyoTimes: number[] }).nomyoTimes.length);
  await page.fill('#message', secret);
  if ((await page.evaluate(() => (document.getElementById('stream') as HTMLInputElement).checked)) !== stream) await page.click('#stream');
  await page.click('button[type=submit]');
  await page
    .waitUntil(90_000, (n) => (globalThis as unknown as { nomyoTimes: number[] }).nomyoTimes.length > n, before)
    .catch(async (err: Error) => {
      const ran = await page.evaluate(() => 'nomyoExample' in globalThis); // false: main.js (or core) failed to load
      throw new Error(`${err.message}; page script ran: ${ran}; page status: ${await text(page, '#status')}; errors: ${(await page.errors()).join(' | ')}`);
    });
  const status = (await text(page, '#status')) ?? '';
  expect(await page.errors(), status).toEqual([]);
  expect(await page.evaluate(() => document.body.dataset.state), status).toBe('done');
  expect(await text(page, '#answer')).toBe(`echo: ${secret}`);
  const ms = await page.evaluate((n) => (globalThis as unknown as { nomyoTimes: number[] }).nomyoTimes[n]!, before);
  return { secret, meta: await text(page, '#meta'), ms };
}

/** The textContent of the first element matching `selector`. */
function text(page: PageDriver, selector: string): Promise<string | null> {
  return page.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);
}

/**
 * Runs in the page: records, for each submit, the time from the page going busy to its answer
 * (or error) being shown, in `globalThis.nomyoTimes`. Measured in the page, so driver latency is not in it.
 */
function recordRequestTimes(): void {
  const times: number[] = ((globalThis as unknown as { nomyoTimes: number[] }).nomyoTimes = []);
  let start = 0;
  new MutationObserver(() => {
    const state = document.body.dataset.state;
    if (state === 'busy') start = performance.now();
    else if (state === 'done' || state === 'error') times.push(performance.now() - start);
  }).observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
}

/** Runs `fn` on the example page (core's unbundled ES modules served at `coreUrl`), then closes both. */
async function onCorePage(browser: Engine, fn: (page: PageDriver, coreUrl: string) => Promise<void>): Promise<void> {
  const example = await startExample();
  const page = await browser.newPage();
  try {
    await page.goto(`${example.url}/`);
    await fn(page, `${example.url}/core`);
  } finally {
    await page.close();
    await example.close();
  }
}

/** A v1 package sealed (by OpenSSL, as a router does) to `spkiBase64`, with an AES key whose first byte is zero; `sealed` of its bytes are sealed. */
function packageWithLeadingZeroKey(spkiBase64: string, plaintext: string, sealed = 32) {
  const key = Buffer.concat([Buffer.alloc(1), randomBytes(31)]);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const publicKey = createPublicKey({ key: Buffer.from(spkiBase64, 'base64'), format: 'der', type: 'spki' });
  const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key.subarray(32 - sealed));
  return {
    version: '1.0',
    algorithm: 'hybrid-aes256-rsa4096',
    encrypted_payload: { ciphertext: ciphertext.toString('base64'), nonce: nonce.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
    encrypted_aes_key: wrapped.toString('base64'),
    key_algorithm: 'RSA-OAEP-SHA256',
    payload_algorithm: 'AES-256-GCM',
  };
}

/**
 * What the README's version cell must start with for the engine that ran: Chromium's and Firefox's
 * major version ("Chrome/156.0.8078.129" -> 156), WebKitGTK's major.minor ("WebKitGTK 2.50.6" ->
 * "WebKitGTK 2.50"), as Debian's stable updates move within them.
 */
function readmeVersion(name: EngineName, reported: string): RegExp {
  const numbers = /(\d+)\.(\d+)/.exec(reported);
  if (!numbers) throw new Error(`${name} reported no version number: ${reported}`);
  const [, major, minor] = numbers;
  return name === 'webkit' ? new RegExp(`^WebKitGTK ${major}\\.${minor}(?![.\\d])`) : new RegExp(`^${major}(?![.\\d])`);
}
