/** Router errors, retries, refusals and tampering, as the official `openai` package sees them. */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { InterceptAction, InterceptedRequest, NomyoServer } from '@nomyo/server';
import { completionRequests, expectNoPlaintextOnWire, expectSealed, PLACEHOLDER_BASE_URL, SECURE_PATH, secureFetchFor, startRouter } from './helpers.js';

const API_KEY = 'sk-nomyo-test';
const SECRET = 'the launch code is 0000';
const messages = [{ role: 'user' as const, content: SECRET }];

let server: NomyoServer;
let openai: OpenAI;
// Each test scripts the router's answers to secure completions (the key fetch always passes).
let script: ((request: InterceptedRequest) => InterceptAction | undefined) | undefined;
let tamper = false;

beforeAll(async () => {
  server = await startRouter({
    apiKey: API_KEY,
    interceptor: (request) => (request.path === SECURE_PATH ? script?.(request) : undefined),
    tamperResponse: (pkg) => {
      if (!tamper) return pkg;
      // Flip one bit of the ciphertext: GCM must refuse it.
      const bytes = Buffer.from(pkg.encrypted_payload.ciphertext, 'base64');
      bytes[0]! ^= 1;
      return { ...pkg, encrypted_payload: { ...pkg.encrypted_payload, ciphertext: bytes.toString('base64') } };
    },
  });
  openai = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: API_KEY, fetch: secureFetchFor(server) });
});
afterAll(() => server?.close());
beforeEach(() => {
  server.clearRequests();
  script = undefined;
  tamper = false;
});

const cases = [
  { status: 400, type: OpenAI.BadRequestError },
  { status: 403, type: OpenAI.PermissionDeniedError },
  { status: 404, type: OpenAI.NotFoundError },
  { status: 418, type: OpenAI.APIError },
  { status: 500, type: OpenAI.InternalServerError },
  { status: 503, type: OpenAI.InternalServerError },
];

describe('router errors become the SDK error classes', () => {
  it.each(cases)('$status', async ({ status, type }) => {
    script = () => ({ status, body: { detail: `scripted ${status}\u0007\nhidden` } });
    const err = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    const apiError = err as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(status);
    // The router's detail arrives sanitized: printable text only, no control characters.
    expect(apiError.message).toContain(`scripted ${status}`);
    expect(apiError.message).not.toMatch(/[\u0000-\u001f]/);
    expect((apiError.error as { code?: string }).code).toMatch(/^ERR_NOMYO/);
    expectNoPlaintextOnWire(server, [SECRET]);
  });

  it.each([201, 204, 299, 600])('%i, neither an answer nor an error, is an APIError 502, never a completion', async (status) => {
    script = () => ({ status, body: status === 204 ? undefined : { detail: 'Created: all good' } });
    const err = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((err as Error).message).toContain(`the router answered ${status}, which is neither an answer nor an error`);
    expect(completionRequests(server)).toHaveLength(1);
  });

  it('401 from a wrong API key is AuthenticationError', async () => {
    const wrong = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: 'sk-wrong', fetch: secureFetchFor(server) });
    const err = await wrong.chat.completions.create({ model: 'echo', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as { status: number }).status).toBe(401);
    expect(completionRequests(server)).toHaveLength(1); // 401 is not retried
  });
});

describe('the SDK does the retries', () => {
  it.each<{ status: number; headers: Record<string, string>; minMs: number }>([
    { status: 429, headers: { 'Retry-After': '1' }, minMs: 900 },
    { status: 503, headers: { 'Retry-After': '0' }, minMs: 0 },
    { status: 503, headers: { 'retry-after-ms': '20' }, minMs: 0 },
  ])('$status with $headers, then success', async ({ status, headers, minMs }) => {
    script = (request) => (request.attempt === 1 ? { status, headers } : undefined);
    const started = Date.now();
    const completion = await openai.chat.completions.create({ model: 'echo', messages });
    expect(completion.choices[0]?.message.content).toBe(`echo: ${SECRET}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(minMs);

    const attempts = completionRequests(server);
    expect(attempts.map((r) => r.response?.status)).toEqual([status, 200]);
    // Each attempt is a fresh package: a new AES key (and nonce) every time.
    const [a, b] = attempts.map((r) => expectSealed(r.body, [SECRET]));
    expect(a!.encrypted_aes_key).not.toBe(b!.encrypted_aes_key);
    expect(a!.encrypted_payload).not.toEqual(b!.encrypted_payload);
  });

  it('gives up after maxRetries with RateLimitError; a Retry-After of 0 is left out, so the SDK backs off instead of coming back at once', async () => {
    script = () => ({ status: 429, headers: { 'Retry-After': '0' } });
    const started = Date.now();
    const err = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as { headers: Headers }).headers.get('retry-after')).toBeNull();
    expect((err as { headers: Headers }).headers.get('x-should-retry')).toBe('true');
    expect(completionRequests(server)).toHaveLength(3);
    // The SDK's own backoff: 0.5 s and 1 s, less a quarter at most.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it.each([
    [500, {}],
    [502, {}],
    [504, {}],
    [503, { 'Retry-After': '120' }],
  ])('%i %j is not retried by the SDK either, as core does not: the model may have run, or the wait is over a minute', async (status, headers) => {
    script = () => ({ status, headers, body: { detail: `scripted ${status}` } });
    const err = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 2 }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(status);
    expect((err as { headers: Headers }).headers.get('x-should-retry')).toBe('false');
    expect(completionRequests(server)).toHaveLength(1);
  });

  it('still refetches a rotated router key once on 400 (the client does that, not the SDK)', async () => {
    await openai.chat.completions.create({ model: 'echo', messages }); // caches the router's key
    await server.rotateKey();
    server.clearRequests();
    const completion = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 0 });
    expect(completion.choices[0]?.message.content).toBe(`echo: ${SECRET}`);
    expect(completionRequests(server).map((r) => r.response?.status)).toEqual([400, 200]);
  });

  it('with createSecureFetch({ maxRetries: 2 }) the client retries a 503 itself, and the SDK not again: three sends, not nine', async () => {
    const retrying = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: API_KEY, fetch: secureFetchFor(server, { maxRetries: 2 }) });
    script = () => ({ status: 503, headers: { 'retry-after-ms': '10' } });
    const err = await retrying.chat.completions.create({ model: 'echo', messages }, { maxRetries: 2 }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(503);
    expect((err as { headers: Headers }).headers.get('x-should-retry')).toBe('false');
    expect(completionRequests(server)).toHaveLength(3);
  });

  it("leaves out the router's x-should-retry, which nothing authenticates: the SDK retries by the status, as core's client does", async () => {
    script = (request) => (request.attempt === 1 ? { status: 400, headers: { 'x-should-retry': 'true' }, body: { detail: 'bad' } } : undefined);
    const err = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as { headers: Headers }).headers.get('x-should-retry')).toBe('false');
    expect(completionRequests(server)).toHaveLength(1);

    server.clearRequests();
    script = (request) => (request.attempt === 1 ? { status: 503, headers: { 'x-should-retry': 'false', 'retry-after-ms': '10' } } : undefined);
    const completion = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 2 });
    expect(completion.choices[0]?.message.content).toBe(`echo: ${SECRET}`);
    expect(completionRequests(server)).toHaveLength(2);
  });

  it('retries a dropped connection (thrown, so the SDK sees a connection error)', async () => {
    script = (request) => (request.attempt === 1 ? { destroy: true } : undefined);
    const completion = await openai.chat.completions.create({ model: 'echo', messages });
    expect(completion.choices[0]?.message.content).toBe(`echo: ${SECRET}`);
    expect(completionRequests(server)).toHaveLength(2);
  });
});

describe('nothing goes out in plaintext', () => {
  it('refuses every endpoint but chat completions, without touching the network, as a 404 the SDK never retries', async () => {
    const secureFetch = secureFetchFor(server);
    let fetches = 0;
    // The SDK's default retries (2): a refusal it took for a connection failure it would send again.
    const counting = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: API_KEY, fetch: (input, init) => (fetches++, secureFetch(input, init)) });
    const calls = [
      () => counting.embeddings.create({ model: 'e', input: SECRET }),
      () => counting.models.list(),
      () => counting.responses.create({ model: 'm', input: SECRET }),
      () => counting.completions.create({ model: 'm', prompt: SECRET }),
    ];
    for (const call of calls) {
      const err = await Promise.resolve(call()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect((err as InstanceType<typeof OpenAI.NotFoundError>).message).toMatch(/only sends chat completions.*createSecureFetch sent nothing/);
      expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('ERR_NOMYO_SECURITY');
    }
    expect(fetches).toBe(calls.length);
    expect(server.requests).toHaveLength(0);
  });

  it('a tampered answer is an error, never plaintext', async () => {
    tamper = true;
    const err = await openai.chat.completions.create({ model: 'echo', messages }, { maxRetries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    expect((err as { cause?: Error }).cause?.name).toBe('SecurityError');
    expect(String(err)).not.toContain(SECRET);
    expectNoPlaintextOnWire(server, [SECRET]);
  });
});
