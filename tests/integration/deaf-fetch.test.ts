/**
 * A `fetch` option that does not pass the signal on (a wrapper that drops `init.signal`, a mock, a
 * polyfill): the timeout, the idle limit and the caller's abort still end the call on time, and an
 * aborted call never resolves with an answer. The library holds its own deadlines, whatever the
 * fetch does with them; the connection of a stream is closed through its body.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { APIConnectionTimeoutError, APIUserAbortError, type ChatCompletionChunk } from '@nomyo/core';
import type { CompletionModel, InterceptAction, NomyoServer } from '@nomyo/server';
import { clientFor, hello, secureRequests, startTestServer } from './support.js';

/** The runtime's fetch, without the signal it was given. */
const deafFetch = (url: string, init: RequestInit): Promise<Response> => {
  const { signal: _dropped, ...rest } = init;
  return fetch(url, rest);
};

/**
 * A deaf fetch whose secure completions pass their headers and ten bytes of the body on, then nothing:
 * a body that never ends. Counts the completions and the bodies cancelled.
 */
function stallingFetch() {
  const counts = { attempts: 0, cancelled: 0 };
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const real = await deafFetch(url, init);
    if (!url.endsWith('/v1/chat/secure_completion')) return real;
    counts.attempts++;
    const reader = real.body!.getReader();
    const { value } = await reader.read();
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(value!.subarray(0, 10)),
      cancel: () => void (counts.cancelled++, reader.cancel()),
    });
    return new Response(body, { status: real.status, headers: real.headers });
  };
  return { fetch, counts };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const chunkOf = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const ask = { ...hello, stream: true as const };

/** What the router's model does with a streamed request: one chunk, then silence until the client has gone. */
const oneChunkThenSilence: CompletionModel = (_request, ctx) =>
  (async function* () {
    yield chunkOf('first');
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  })();

describe('a fetch that does not pass the signal on', () => {
  let router: NomyoServer;
  let script: () => InterceptAction | undefined = () => undefined;
  let model: CompletionModel = oneChunkThenSilence;
  beforeAll(async () => {
    router = await startTestServer({
      // No heartbeat within the tests: silence is silence.
      streamHeartbeatMs: 60_000,
      interceptor: (req) => (req.path === '/v1/chat/secure_completion' ? script() : undefined),
      // A whole answer for a whole request (the echo model's shape); the streamed ones as each test says.
      model: (request, ctx) =>
        request.stream ? model(request, ctx) : { id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'late' }, finish_reason: 'stop' }] },
    });
  });
  beforeEach(() => {
    router.clearRequests();
    script = () => undefined;
    model = oneChunkThenSilence;
  });
  afterAll(() => router.close());

  const client = (options = {}) => clientFor(router, { fetch: deafFetch, maxRetries: 0, ...options });

  it('a whole answer: the timeout and the abort end the call on time, never with the answer that comes later', async () => {
    script = () => ({ delayMs: 4000 });
    let started = Date.now();
    const timedOut = await client({ timeout: 300 })
      .create(hello)
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(2500);

    const caller = new AbortController();
    setTimeout(() => caller.abort(), 200);
    started = Date.now();
    const aborted = await client()
      .create(hello, { signal: caller.signal })
      .catch((e: unknown) => e);
    expect(aborted).toBeInstanceOf(APIUserAbortError);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('a whole answer whose body stalls: the timeout cancels the body (every attempt\'s), not only the wait for it', async () => {
    const { fetch: stalling, counts } = stallingFetch();
    const err = await client({ fetch: stalling, timeout: 400, maxRetries: 1 })
      .create(hello)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(counts.attempts).toBe(2);
    await expect.poll(() => counts.cancelled).toBe(2);
  });

  it('an error whose body stalls, its length declared: the timeout cancels the body too', async () => {
    script = () => ({ status: 400, body: JSON.stringify({ detail: 'x'.repeat(200) }) });
    // Its headers (Content-Length among them) come whole: only the body stalls.
    const { fetch: stalling, counts } = stallingFetch();
    const started = Date.now();
    const err = await client({ fetch: stalling, timeout: 400 })
      .create(hello)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(2500);
    await expect.poll(() => counts.cancelled).toBe(1);
  });

  it('a stream whose header is slow: the timeout bounds the wait for it', async () => {
    model = async (request, ctx) => {
      await sleep(4000);
      return oneChunkThenSilence(request, ctx);
    };
    const started = Date.now();
    const err = await client({ timeout: 300 })
      .create(ask)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect((err as Error).message).toMatch(/no stream header within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it.each(['the idle limit', 'controller.abort()'])('a stream gone silent: %s ends it, and its connection is closed', async (how) => {
    const stream = await client({ streamIdleTimeout: 300 }).create(ask);
    const chunks: ChatCompletionChunk[] = [];
    const error = await (async () => {
      for await (const c of stream) {
        chunks.push(c);
        if (how === 'controller.abort()') setTimeout(() => stream.controller.abort(), 100);
      }
    })().catch((e: unknown) => e);
    expect(chunks.map((c) => c.choices[0]?.delta.content)).toEqual(['first']);
    expect(error).toBeInstanceOf(how === 'the idle limit' ? APIConnectionTimeoutError : APIUserAbortError);
    // The router's side of the connection went with it: its stream ended, cut off.
    await expect.poll(() => secureRequests(router).at(-1)?.response?.outcome, { timeout: 5000 }).toBe('aborted');
  });
});
