/** createSecureFetch called directly, as any fetch-taking SDK might call it: inputs, body kinds, the raw SSE. */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { HttpError, echoModel, type ChatRequest, type NomyoServer } from '@nomyo/server';
import { completionRequests, expectSealed, secureFetchFor, startRouter } from './helpers.js';
import { PROTECTION_HEADERS, type SecureFetch } from '@nomyo/core';

const URL_ = 'https://router.invalid/v1/chat/completions';
const sleep = (ms: number, signal: AbortSignal) => new Promise((resolve) => { const t = setTimeout(resolve, ms); signal.addEventListener('abort', () => (clearTimeout(t), resolve(undefined)), { once: true }); });
const body = (content: string, extra: object = {}) => JSON.stringify({ model: 'echo', messages: [{ role: 'user', content }], ...extra });

let server: NomyoServer;
let secureFetch: SecureFetch;
let seen: ChatRequest[] = [];

beforeAll(async () => {
  server = await startRouter({
    model: async (request, context) => {
      seen.push(request);
      const asked = JSON.stringify(request.messages);
      if (asked.includes('FAIL-503')) throw new HttpError(503, 'the inference backend is busy');
      if (asked.includes('SLOW')) await sleep(5000, context.signal);
      return echoModel(request, context);
    },
  });
  secureFetch = secureFetchFor(server, { apiKey: 'sk-default', securityTier: 'standard' });
});
afterAll(() => server?.close());
beforeEach(() => {
  server.clearRequests();
  seen = [];
});

async function contentOf(response: Response): Promise<string> {
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/json');
  const json = (await response.json()) as { choices: Array<{ message: { content: string } }> };
  return json.choices[0]!.message.content;
}

describe('createSecureFetch', () => {
  it('accepts every body kind and a Request or URL input', async () => {
    const bytes = new TextEncoder().encode(body('as bytes'));
    const answers = await Promise.all([
      secureFetch(URL_, { method: 'POST', body: body('as string') }),
      secureFetch(new URL(URL_), { method: 'post', body: bytes }),
      secureFetch(URL_, { method: 'POST', body: bytes.slice().buffer }),
      secureFetch(URL_, { method: 'POST', body: new Blob([body('as blob')]) }),
      secureFetch(URL_, { method: 'POST', body: new Response(body('as stream')).body, duplex: 'half' } as RequestInit),
      secureFetch(new Request(URL_, { method: 'POST', body: body('as request') })),
      secureFetch('/v1/chat/completions/', { method: 'POST', body: body('relative') }),
    ]);
    const contents = await Promise.all(answers.map(contentOf));
    expect(contents).toEqual(['as string', 'as bytes', 'as bytes', 'as blob', 'as stream', 'as request', 'relative'].map((t) => `echo: ${t}`));
    for (const request of completionRequests(server)) expectSealed(request.body, ['as ']);
  });

  it('answers a long text with the JSON that JSON.stringify gives, escapes and non-ASCII included', async () => {
    const text = 'Zeile "eins"\n\tÜberweisung 👋 \u0001 \\ end. '.repeat(2000); // past core's 16 Ki long-string threshold
    const response = await secureFetch(URL_, { method: 'POST', body: body(text) });
    const raw = await response.text();
    expect(JSON.stringify(JSON.parse(raw))).toBe(raw);
    expect(await contentOf(new Response(raw, { headers: { 'content-type': 'application/json' } }))).toBe(`echo: ${text}`);
  });

  it('uses the Bearer header first, then the default key; tier from body, header, then default', async () => {
    await secureFetch(URL_, { method: 'POST', body: body('a', { security_tier: 'maximum' }), headers: { Authorization: 'Bearer sk-header' } });
    await secureFetch(URL_, { method: 'POST', body: body('b'), headers: new Headers({ 'X-Security-Tier': 'high' }) });
    await secureFetch(URL_, { method: 'POST', body: body('c') });
    const sent = completionRequests(server).map((r) => [r.headers.authorization, r.headers['x-security-tier']]);
    expect(sent).toEqual([
      ['Bearer sk-header', 'maximum'],
      ['Bearer sk-default', 'high'],
      ['Bearer sk-default', 'standard'],
    ]);
    expect(seen.map((r) => Object.keys(r).sort())).toEqual(Array(3).fill(['messages', 'model']));
  });

  it('without an apiKey option, the default key is NOMYO_API_KEY, as SecureChatCompletion\'s', async () => {
    vi.stubEnv('NOMYO_API_KEY', 'sk-from-env');
    try {
      const fromEnv = secureFetchFor(server);
      server.clearRequests();
      await fromEnv(URL_, { method: 'POST', body: body('d') });
      await fromEnv(URL_, { method: 'POST', body: body('e'), headers: { Authorization: 'Bearer sk-header' } });
      expect(completionRequests(server).map((r) => r.headers.authorization)).toEqual(['Bearer sk-from-env', 'Bearer sk-header']);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('refuses other endpoints and methods before any I/O, as a 404 not to retry (a body or tier that cannot be sent: a 400)', async () => {
    const refused = [
      secureFetch('https://router.invalid/v1/embeddings', { method: 'POST', body: body('x') }),
      secureFetch('https://router.invalid/v1/chat/completions', { method: 'GET' }),
      secureFetch('https://router.invalid/v1/chat/completions/abc/messages', { method: 'POST', body: body('x') }),
      secureFetch(new Request('https://router.invalid/v1/models')),
    ];
    const invalid = [
      secureFetch(URL_, { method: 'POST', body: 'not json' }),
      secureFetch(URL_, { method: 'POST', body: body('x', { security_tier: 'ultra' }) }),
    ];
    for (const [calls, status, code] of [[refused, 404, 'ERR_NOMYO_SECURITY'], [invalid, 400, 'ERR_NOMYO_INVALID_ARGUMENT']] as const) {
      for (const call of calls) {
        const response = await call;
        expect(response.status).toBe(status);
        expect(response.headers.get('x-should-retry')).toBe('false');
        const { error } = (await response.json()) as { error: { message: string; code: string } };
        expect(error.code).toBe(code);
        expect(error.message).toMatch(/createSecureFetch sent nothing\)$/);
      }
    }
    expect(server.requests).toHaveLength(0);
  });

  it('throws an AbortError for an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(secureFetch(URL_, { method: 'POST', body: body('x'), signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(server.requests).toHaveLength(0);
  });

  it.each([
    ['an abort()', () => new AbortController(), (c: AbortController) => c.abort(), { name: 'AbortError' }],
    ['an abort with a reason of its own', () => new AbortController(), (c: AbortController) => c.abort(new Error('user left')), { message: 'user left' }],
  ] as const)('throws what fetch throws, the signal\'s reason, for %s in flight, whole or streamed', async (_what, make, abort, expected) => {
    for (const stream of [false, true]) {
      const controller = make();
      setTimeout(() => abort(controller), 100);
      const err = await secureFetch(URL_, { method: 'POST', body: body('SLOW', { stream }), signal: controller.signal }).catch((e: unknown) => e);
      expect(err).toMatchObject(expected);
      if ('message' in expected) expect(err).toBe(controller.signal.reason);
    }
  });

  it('throws a TimeoutError for AbortSignal.timeout(), as fetch does', async () => {
    const err = await secureFetch(URL_, { method: 'POST', body: body('SLOW'), signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError' });
  });

  it('an error Response carries x-request-id, the X-Payload-ID sent, as an answer does', async () => {
    for (const stream of [false, true]) {
      const response = await secureFetch(URL_, { method: 'POST', body: body('FAIL-503', { stream }) });
      expect(response.status).toBe(503);
      const sent = completionRequests(server).at(-1)!.headers['x-payload-id'];
      expect(sent).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers.get('x-request-id')).toBe(sent);
    }
  });

  it('an answer\'s Response says what protected it, a stream\'s too (its chunks carry no _metadata); a v1 router\'s whole answer is no stream', async () => {
    const whole = await secureFetch(URL_, { method: 'POST', body: body('hi') });
    const streamed = await secureFetch(URL_, { method: 'POST', body: body('hi', { stream: true }) });
    const protection = (response: Response) => Object.fromEntries(Object.values(PROTECTION_HEADERS).map((name) => [name, response.headers.get(name)]));
    expect(protection(whole)).toEqual({ 'x-nomyo-protocol': '2', 'x-nomyo-encryption-algorithm': 'aes256gcm-hkdf-sha256', 'x-nomyo-streamed': 'false' });
    expect(protection(streamed)).toEqual({ 'x-nomyo-protocol': '2', 'x-nomyo-encryption-algorithm': 'aes256gcm-hkdf-sha256-stream', 'x-nomyo-streamed': 'true' });
    await Promise.all([whole.body?.cancel(), streamed.body?.cancel()]);
    const v1 = await startRouter({ protocol: 1 });
    try {
      const response = await secureFetchFor(v1)(URL_, { method: 'POST', body: body('hi', { stream: true }) });
      expect(protection(response)).toEqual({ 'x-nomyo-protocol': '1', 'x-nomyo-encryption-algorithm': 'hybrid-aes256-rsa4096', 'x-nomyo-streamed': 'false' });
      expect(await response.text()).toMatch(/data: \[DONE\]\n\n$/);
    } finally {
      await v1.close();
    }
  });

  it('answers stream: true with a well-formed SSE body', async () => {
    const response = await secureFetch(URL_, { method: 'POST', body: body('one two three', { stream: true, stream_options: { include_usage: true } }) });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await response.text();
    const events = text.split('\n\n');
    expect(events.pop()).toBe('');
    expect(events.pop()).toBe('data: [DONE]');
    expect(events.every((e) => e.startsWith('data: {'))).toBe(true);
    const chunks = events.map((e) => JSON.parse(e.slice('data: '.length)));
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 4 } });
    expect(chunks.at(-2).choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(seen[0]).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });
});
