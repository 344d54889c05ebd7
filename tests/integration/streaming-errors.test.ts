/**
 * How a streamed answer ends when something goes wrong, as the spec says: an error before the stream
 * starts rejects create(); an upstream that fails part-way ends the stream with a sealed final record
 * that carries the error, after the chunks before it; an abort closes the connection and reaches the
 * upstream; `timeout` bounds the time until the header, silence is bounded after it, heartbeats keep
 * a quiet stream alive; a stream is never retried once it has started. Also the upstream variations
 * a router must tolerate, against a scripted upstream on loopback.
 */
import { getEventListeners } from 'node:events';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  InvalidRequestError,
  RateLimitError,
  StreamTruncatedError,
  createSecureFetch,
  type ChatCompletionChunk,
} from '@nomyo/core';
import { HttpError, UpstreamError, type CompletionModel, type NomyoServer } from '@nomyo/server';
import { DONE, chunk, event, startEvents, startUpstream, wordsScript, type ScriptedUpstream } from './sse-upstream.js';
import { startProxy } from './proxy.js';
import { clientFor, startTestServer } from './support.js';

const ask = (content = 'hi') => ({ model: 'm', messages: [{ role: 'user', content }], stream: true as const });
const contentOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the stream to its end: the chunks delivered, and the error that ended it (if any). */
async function drain(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ chunks: ChatCompletionChunk[]; error: unknown }> {
  const chunks: ChatCompletionChunk[] = [];
  try {
    for await (const c of stream) chunks.push(c);
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

/** A model streaming `words`, then doing `end` (throwing, or nothing). */
function modelThen(words: string[], end: () => void = () => {}): CompletionModel {
  return async function* (request) {
    for (const w of words) yield { id: 'c', object: 'chat.completion.chunk', created: 1, model: request.model, choices: [{ index: 0, delta: { content: w }, finish_reason: null }] };
    end();
  };
}

describe('errors in the final record', () => {
  it.each([
    ['an UpstreamError', () => { throw new UpstreamError(400, 'generic', { message: 'context length exceeded by "secret prompt"', type: 'invalid_request_error', code: 'context_length_exceeded', status: 400 }); }, InvalidRequestError, 400, 'context length exceeded by "secret prompt"'],
    ['an HttpError', () => { throw new HttpError(502, 'the inference backend connection broke off'); }, APIError, 502, 'the inference backend connection broke off'],
    ['a bug', () => { throw new TypeError('undefined is not a function: the prompt was …'); }, APIError, 500, 'internal server error'],
  ])('%s after two chunks: the chunks, then an APIError with the sealed message, and nothing after it', async (_name, end, type, status, message) => {
    const router = await startTestServer({ model: modelThen(['one ', 'two'], end) });
    try {
      const stream = await clientFor(router).create(ask());
      const iterator = stream[Symbol.asyncIterator]();
      const { chunks, error } = await drain({ [Symbol.asyncIterator]: () => iterator });
      expect(contentOf(chunks)).toBe('one two');
      expect(error).toBeInstanceOf(type);
      expect(error).toMatchObject({ status, detail: message, sealed: true });
      expect((await iterator.next()).done).toBe(true);
      // The error's text travelled sealed: the router's log of the exchange shows a 200 that completed.
      expect(router.requests.at(-1)!.response).toMatchObject({ status: 200, outcome: 'answered' });
    } finally {
      await router.close();
    }
  });

  it('an error before the stream starts rejects create(), typed as for a whole answer', async () => {
    const router = await startTestServer({
      model: () => {
        throw new UpstreamError(429, 'the inference backend is rate limiting (4xx)', { message: 'slow down', type: 'rate_limit', code: null, status: 429 }, { 'Retry-After': '2' });
      },
    });
    try {
      const err = await clientFor(router, { maxRetries: 0 }).create(ask()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitError);
      expect(err).toMatchObject({ status: 429, detail: 'slow down', sealed: true, retryAfter: 2 });
    } finally {
      await router.close();
    }
  });
});

describe('against an upstream that streams', () => {
  let upstream: ScriptedUpstream;
  let router: NomyoServer;
  beforeAll(async () => {
    upstream = await startUpstream();
    router = await startTestServer({ upstream: upstream.url, streamHeartbeatMs: 100 });
  });
  afterAll(async () => {
    await router.close();
    await upstream.close();
  });
  beforeEach(() => {
    upstream.requests.length = 0;
  });

  it('forwards stream and stream_options, and streams each upstream chunk as it comes', async () => {
    upstream.script = wordsScript(['alpha ', 'beta ', 'gamma'], 80);
    const stream = await clientFor(router).create({ ...ask(), stream_options: { include_usage: true } });
    const at: number[] = [];
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of stream) (chunks.push(c), at.push(performance.now()));
    expect(contentOf(chunks)).toBe('alpha beta gamma');
    expect(upstream.requests[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true }, model: 'm' });
    expect(upstream.requests[0]!.headers.accept).toBe('text/event-stream, application/json');
    expect(at[3]! - at[1]!).toBeGreaterThan(80);
  });

  it('tolerates what upstreams differ in: role-only first chunk, usage: null, empty choices, comments, CRLF, data: without a space, no [DONE] after a finish', async () => {
    upstream.script = (_request, res) => {
      startEvents(res);
      res.write(': keep-alive\r\n\r\n');
      res.write(`data:${JSON.stringify(chunk({ role: 'assistant' }, null, { usage: null }))}\r\n\r\n`);
      res.write(`data: ${JSON.stringify(chunk({ content: 'crlf ' }, null, { usage: null }))}\r\n\r\n`);
      res.write(`id: 7\nretry: 10\ndata: ${JSON.stringify(chunk({ content: 'ok' }, null, { usage: null }))}\n\n`);
      res.write(event(chunk({}, 'stop', { usage: null })));
      res.end(event({ id: 'chatcmpl-up', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }));
    };
    const { chunks, error } = await drain(await clientFor(router).create(ask()));
    expect(error).toBeUndefined();
    expect(contentOf(chunks)).toBe('crlf ok');
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant' });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: 3 } });
    // `usage: null` is dropped: the protocol has `usage` an object where present.
    expect(chunks.slice(0, -1).filter((c) => 'usage' in c)).toEqual([]);
  });

  it.each([
    ['an error event', `event: error\ndata: ${JSON.stringify({ error: { message: 'model overloaded', type: 'server_error', code: 503 } })}\n\n`, 503, 'model overloaded'],
    ['a data: {"error"} event', event({ error: { message: 'context too long', type: 'invalid_request_error', code: 'context_length_exceeded' } }), 502, 'context too long'],
  ])('an upstream that fails part-way (%s): the chunks before it, then the error, sealed', async (_name, failure, status, message) => {
    upstream.script = (_request, res) => {
      startEvents(res);
      res.write(event(chunk({ content: 'partial' })));
      res.end(failure);
    };
    const { chunks, error } = await drain(await clientFor(router).create(ask()));
    expect(contentOf(chunks)).toBe('partial');
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ status, detail: message, sealed: true });
  });

  it('an upstream that breaks off: the final record says so (an APIError, never a normal end)', async () => {
    upstream.script = (_request, res) => {
      startEvents(res);
      res.write(event(chunk({ content: 'cut ' })));
      setTimeout(() => res.destroy(), 50);
    };
    const { chunks, error } = await drain(await clientFor(router).create(ask()));
    expect(contentOf(chunks)).toBe('cut ');
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(502);
  });

  /** An upstream that answers stream: true with a whole completion. */
  const wholeCompletion: ScriptedUpstream['script'] = (_request, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id: 'w', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'whole answer' }, finish_reason: 'stop' }] }));
  };

  it('an upstream that answers stream: true with a whole completion: a whole answer, delivered as chunks', async () => {
    upstream.script = wholeCompletion;
    const stream = await clientFor(router).create(ask());
    expect(stream._metadata.streamed).toBe(false);
    expect(contentOf((await drain(stream)).chunks)).toBe('whole answer');
  });

  it.each(['controller.abort()', 'the signal option'])('a whole answer delivered as chunks: an abort (%s) ends the iteration with APIUserAbortError, nothing after it', async (how) => {
    upstream.script = wholeCompletion;
    const signal = new AbortController();
    const stream = await clientFor(router).create(ask(), { signal: signal.signal });
    expect(stream._metadata.streamed).toBe(false);
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    (how === 'the signal option' ? signal : stream.controller).abort();
    const { chunks, error } = await drain({ [Symbol.asyncIterator]: () => iterator });
    expect(error).toBeInstanceOf(APIUserAbortError);
    expect(chunks).toEqual([]);
    expect((await iterator.next()).done).toBe(true);
  });

  it.each(['controller.abort()', 'the signal option'])('an abort (%s) after the last chunk, before the end: APIUserAbortError, a whole answer or a streamed one', async (how) => {
    for (const script of [wholeCompletion, wordsScript(['one ', 'two'])]) {
      upstream.script = script;
      const count = (await drain(await clientFor(router).create(ask()))).chunks.length;
      const signal = new AbortController();
      const stream = await clientFor(router).create(ask(), { signal: signal.signal });
      const iterator = stream[Symbol.asyncIterator]();
      for (let i = 0; i < count; i++) expect((await iterator.next()).done).toBe(false);
      (how === 'the signal option' ? signal : stream.controller).abort();
      await expect(iterator.next()).rejects.toBeInstanceOf(APIUserAbortError);
      expect((await iterator.next()).done).toBe(true);
    }
  });

  it('a caller that reads late and slowly: what came meanwhile is no silence, and nothing is lost', async () => {
    upstream.script = wordsScript(['one ', 'two ', 'three']);
    const stream = await clientFor(router, { streamIdleTimeout: 300 }).create(ask());
    await sleep(700); // the whole answer has come and waits for the caller, who is busy
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    await sleep(700);
    const rest = await drain({ [Symbol.asyncIterator]: () => iterator });
    expect(rest.error).toBeUndefined();
    expect(contentOf([first.value as ChatCompletionChunk, ...rest.chunks])).toBe('one two three');
  });

  it('heartbeats keep a quiet stream alive past the idle timeout; without them it times out', async () => {
    upstream.script = async (_request, res) => {
      startEvents(res);
      res.write(event(chunk({ content: 'before ' })));
      await sleep(700); // a long prefill: the router sends a heartbeat every 100 ms meanwhile
      if (res.destroyed) return;
      res.write(event(chunk({ content: 'after' }, 'stop')));
      res.end(DONE);
    };
    const kept = await drain(await clientFor(router, { streamIdleTimeout: 400 }).create(ask()));
    expect(kept.error).toBeUndefined();
    expect(contentOf(kept.chunks)).toBe('before after');

    const silent = await startTestServer({ upstream: upstream.url, streamHeartbeatMs: 60_000 });
    try {
      const cut = await drain(await clientFor(silent, { streamIdleTimeout: 400 }).create(ask()));
      expect(contentOf(cut.chunks)).toBe('before ');
      expect(cut.error).toBeInstanceOf(APIConnectionTimeoutError);
      expect((cut.error as Error).message).toMatch(/nothing arrived for 400 ms/);
    } finally {
      await silent.close();
    }
  });

  it.each(['controller.abort()', 'the signal option'])('an abort (%s) ends the iteration with APIUserAbortError and reaches the upstream', async (how) => {
    upstream.script = wordsScript(Array.from({ length: 100 }, (_, i) => `w${i} `), 30);
    const signal = new AbortController();
    const stream = await clientFor(router).create(ask(), { signal: signal.signal });
    const chunks: ChatCompletionChunk[] = [];
    const error = await (async () => {
      for await (const c of stream) {
        chunks.push(c);
        if (chunks.length === 3) (how === 'the signal option' ? signal : stream.controller).abort();
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIUserAbortError);
    expect(chunks).toHaveLength(3);
    await expect.poll(() => upstream.requests[0]?.closedEarly, { timeout: 5000 }).toBe(true);
  });

  it('a stream aborted before it is iterated lets go of the caller\'s signal, and delivers nothing', async () => {
    upstream.script = wordsScript(['one ', 'two']);
    const signal = new AbortController();
    const stream = await clientFor(router).create(ask(), { signal: signal.signal });
    expect(getEventListeners(signal.signal, 'abort')).toHaveLength(1);
    stream.controller.abort();
    expect(getEventListeners(signal.signal, 'abort')).toHaveLength(0);
    const { chunks, error } = await drain(stream);
    expect(error).toBeInstanceOf(APIUserAbortError);
    expect(chunks).toEqual([]);
  });

  it('timeout bounds the time until the header event: an upstream slow to answer times out before the stream starts', async () => {
    upstream.script = async (request, res) => {
      await sleep(1500);
      if (!res.destroyed) await wordsScript(['late'])(request, res);
    };
    // A router whose heartbeat interval (when it commits a silent model's stream) is past the timeout.
    const patient = await startTestServer({ upstream: upstream.url, streamHeartbeatMs: 60_000 });
    try {
      const err = await clientFor(patient, { timeout: 300, maxRetries: 0 }).create(ask()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIConnectionTimeoutError);
      expect((err as Error).message).toMatch(/no stream header within 300 ms/);
    } finally {
      await patient.close();
    }
  });

  it('an upstream silent for a heartbeat interval before it answers (a queue, a long prefill): the stream starts then, and the timeout is no longer running', async () => {
    upstream.script = async (request, res) => {
      await sleep(600);
      if (!res.destroyed) await wordsScript(['queued ', 'answer'])(request, res);
    };
    const started = performance.now();
    const stream = await clientFor(router, { timeout: 300, maxRetries: 0 }).create(ask());
    expect(performance.now() - started).toBeLessThan(300); // the header, at the router's 100 ms
    const { chunks, error } = await drain(stream);
    expect(error).toBeUndefined();
    expect(contentOf(chunks)).toBe('queued answer');
    expect(stream._metadata.streamed).toBe(true);
    expect(upstream.requests).toHaveLength(1);

    // Aborted while the upstream is still silent: the abort reaches it.
    upstream.requests.length = 0;
    const waiting = await clientFor(router).create(ask());
    waiting.controller.abort();
    expect((await drain(waiting)).error).toBeInstanceOf(APIUserAbortError);
    await expect.poll(() => upstream.requests[0]?.closedEarly, { timeout: 5000 }).toBe(true);
  });

  it('a silent upstream that then refuses (429) or answers whole: the refusal in the final record, typed by its status and not retried; the whole answer as chunks', async () => {
    upstream.script = async (_request, res) => {
      await sleep(400);
      if (res.destroyed) return;
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
      res.end(JSON.stringify({ error: { message: 'queue full for this key', type: 'rate_limit_error', code: 'rate_limited' } }));
    };
    const refused = await drain(await clientFor(router, { maxRetries: 2 }).create(ask()));
    expect(refused.error).toBeInstanceOf(RateLimitError);
    expect(refused.error).toMatchObject({ status: 429, sealed: true, detail: 'queue full for this key' });
    expect(refused.chunks).toEqual([]);
    expect(upstream.requests).toHaveLength(1);

    upstream.script = async (_request, res) => {
      await sleep(400);
      if (res.destroyed) return;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: 'up', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'whole after all' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 } }));
    };
    const whole = await drain(await clientFor(router).create({ ...ask(), stream_options: { include_usage: true } }));
    expect(whole.error).toBeUndefined();
    expect(contentOf(whole.chunks)).toBe('whole after all');
    expect(whole.chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: 4 } });

    // Larger than a record may be (1 MiB), whole: its chunks are not.
    const args = JSON.stringify({ document: 'x'.repeat(1_500_000) });
    upstream.script = async (_request, res) => {
      await sleep(400);
      if (res.destroyed) return;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const call = { id: 'call_1', type: 'function', function: { name: 'store', arguments: args } };
      res.end(JSON.stringify({ id: 'up', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [call] }, finish_reason: 'tool_calls' }] }));
    };
    const large = await drain(await clientFor(router).create(ask()));
    expect(large.error).toBeUndefined();
    const pieces = large.chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.map((p) => p.function?.arguments ?? '').join('')).toBe(args);
  });

  it('through createSecureFetch, the refusal of an upstream silent for a heartbeat interval is the SDK\'s RateLimitError, with its status; a late answer streams', async () => {
    const secureFetch = createSecureFetch({ client: clientFor(router).client });
    const openai = new OpenAI({ baseURL: 'http://nomyo.invalid/v1', apiKey: 'k', fetch: secureFetch, maxRetries: 0 });
    upstream.script = async (_request, res) => {
      await sleep(400);
      if (res.destroyed) return;
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
      res.end(JSON.stringify({ error: { message: 'queue full for this key', type: 'rate_limit_error', code: 'rate_limited' } }));
    };
    const sdkAsk = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], stream: true as const };
    const err = await openai.chat.completions.create(sdkAsk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', message: '429 queue full for this key' });

    upstream.script = async (request, res) => {
      await sleep(400);
      if (!res.destroyed) await wordsScript(['late ', 'words'])(request, res);
    };
    let text = '';
    for await (const c of await openai.chat.completions.create(sdkAsk)) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('late words');
  });

  it('a stream is never retried once its header has come; before it, as any request', async () => {
    const proxy = await startProxy(router.url);
    try {
      upstream.script = wordsScript(['one ', 'two ', 'three']);
      let answers = 0;
      // The first answer cut short after its header and a record: truncated, and not sent again.
      proxy.hooks = {
        answer: (answer, request) => {
          if (request.method !== 'POST') return;
          answers++;
          const text = answer.body.toString('latin1');
          answer.body = Buffer.from(text.slice(0, text.indexOf('\n\n', text.indexOf('\n\n') + 2) + 2), 'latin1');
        },
      };
      const client = clientFor({ url: proxy.url } as NomyoServer, { maxRetries: 3 });
      const cut = await drain(await client.create(ask()));
      expect(cut.error).toBeInstanceOf(StreamTruncatedError);
      expect(cut.chunks.length).toBe(1);
      expect(answers).toBe(1);
      // Before the header: a 503 is retried, as for any request.
      answers = 0;
      proxy.hooks = {
        answer: (answer, request) => {
          if (request.method === 'POST' && ++answers === 1) Object.assign(answer, { status: 503, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"detail":"busy"}') });
        },
      };
      const retried = await drain(await client.create(ask()));
      expect(contentOf(retried.chunks)).toBe('one two three');
      expect(answers).toBe(2);
    } finally {
      await proxy.close();
    }
  });
});
