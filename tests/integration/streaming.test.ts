/**
 * Streamed answers end to end, against the reference router on loopback: tokens arrive as the model
 * makes them, sealed record by record; a router or upstream that answers whole, and every v1 router,
 * give the same chunks made from the whole answer; the secrets live in secure memory and are zeroed
 * however the stream ends.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { ChatCompletionChunk, ChatCompletionStream, SecureChatCompletionResult } from '@nomyo/core';
import { STREAM_PADDING_BYTES, V2_ANSWER_ALGORITHM, V2_STREAM_ALGORITHM, PACKAGE_ALGORITHM } from '@nomyo/core/protocol';
import { echoCompletion, type NomyoServer } from '@nomyo/server';
import { startProxy, type Proxy } from './proxy.js';
import { spyMemory } from './spy-memory.js';
import { clientFor, startTestServer } from './support.js';

const DELAY_MS = 60;
const ask = <E extends object = object>(content: string, extra?: E) => ({ model: 'm', messages: [{ role: 'user' as const, content }], ...extra }) as { model: string; messages: Array<{ role: 'user'; content: string }> } & E;
const contentOf = (chunks: ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ chunks: ChatCompletionChunk[]; at: number[] }> {
  const chunks: ChatCompletionChunk[] = [];
  const at: number[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    at.push(performance.now());
  }
  return { chunks, at };
}

let router: NomyoServer; // the echo model, a pause between words
let v1Router: NomyoServer;
let proxy: Proxy; // records what crossed the wire
let wire: Buffer[] = [];

beforeAll(async () => {
  router = await startTestServer({ echoDelayMs: DELAY_MS });
  v1Router = await startTestServer({ protocol: 1 });
  proxy = await startProxy(router.url, { answer: (answer) => void wire.push(answer.body) });
});
afterAll(async () => {
  await proxy.close();
  await router.close();
  await v1Router.close();
});

describe('streamed answers (protocol 2)', () => {
  it('delivers each token as the model makes it: the first long before the last is generated', async () => {
    const words = 'one two three four five six seven eight';
    const client = clientFor(router);
    await client.client.fetchServerPublicKey(); // a first contact's key fetch is not the stream's
    const start = performance.now();
    const stream = await client.create(ask(words, { stream: true as const }));
    const started = performance.now() - start;
    expect(stream._metadata).toMatchObject({ protocol: 2, streamed: true, encryption_algorithm: V2_STREAM_ALGORITHM });
    expect(stream.controller).toBeInstanceOf(AbortController);
    const { chunks, at } = await collect(stream);
    expect(contentOf(chunks)).toBe(`echo: ${words}`);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    // create() resolved at the header event, before the model's pauses; the words came one pause apart.
    const contentAt = at.filter((_, i) => chunks[i]!.choices[0]?.delta.content);
    expect(started).toBeLessThan((contentAt.at(-1)! - start) * 0.5);
    expect(contentAt.at(-1)! - contentAt[1]!).toBeGreaterThan(DELAY_MS * 6 * 0.5);
  });

  it('is the echo completion, chunk by chunk: usage when stream_options asks for it, tool calls in pieces', async () => {
    const client = clientFor(router);
    const usage = await collect(await client.create(ask('count these words', { stream: true as const, stream_options: { include_usage: true } })));
    const whole = echoCompletion(ask('count these words') as never, { payloadId: 'x' });
    expect(usage.chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage });
    expect(usage.chunks.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);

    const tools = [{ type: 'function', function: { name: 'lookup', parameters: {} } }];
    const called = await collect(await client.create({ ...ask('call: the weather in Paris'), tools, stream: true as const }));
    const calls = called.chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'lookup' } });
    expect(calls.map((c) => c.function?.arguments ?? '').join('')).toBe('{"input":"the weather in Paris"}');
    expect(called.chunks.at(-1)!.choices[0]!.finish_reason).toBe('tool_calls');
  });

  it('on the wire: an event stream of padded records, nothing readable, the headers that keep proxies from buffering', async () => {
    wire = [];
    const secret = 'the secret word is swordfish';
    const stream = await clientFor({ url: proxy.url } as NomyoServer).create(ask(secret, { stream: true as const }));
    expect(contentOf((await collect(stream)).chunks)).toBe(`echo: ${secret}`);
    const body = wire.at(-1)!.toString('latin1');
    expect(body).not.toContain('swordfish');
    const events = body.split('\n\n').filter((e) => e !== '');
    expect(events[0]).toMatch(/^event: nomyo-stream\ndata: \{"version":"2\.0","algorithm":"aes256gcm-hkdf-sha256-stream","salt":"[A-Za-z0-9+/]{43}="\}$/);
    expect(events.at(-1)).toMatch(/^event: nomyo-final\ndata: [A-Za-z0-9+/=]+$/);
    const records = events.slice(1).map((e) => Buffer.from(e.split('data: ')[1]!, 'base64'));
    // Each plaintext padded to a multiple of 128 bytes (the 16-byte tag on top): a one-word chunk and
    // a long one look the same size.
    for (const record of records) expect((record.length - 16) % STREAM_PADDING_BYTES).toBe(0);
    expect(new Set(records.slice(1, -1).map((r) => r.length)).size).toBe(1);
    const response = router.requests.at(-1)!.response!;
    expect(response.headers).toMatchObject({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
  });

  it('the types follow `stream`: a ChatCompletionStream for stream: true, the completion otherwise (create and chat.completions.create)', async () => {
    const client = clientFor(router);
    expectTypeOf(client.create(ask('t', { stream: true as const }))).resolves.toEqualTypeOf<ChatCompletionStream>();
    expectTypeOf(client.chat.completions.create(ask('t', { stream: true as const }))).resolves.toEqualTypeOf<ChatCompletionStream>();
    expectTypeOf(client.create({ model: 'm', messages: [{ role: 'user', content: 't' }] })).resolves.toEqualTypeOf<SecureChatCompletionResult>();
    expectTypeOf(client.chat.completions.create(ask('t', { stream: false as const }))).resolves.toEqualTypeOf<SecureChatCompletionResult>();
    const stream = await client.chat.completions.create(ask('typed', { stream: true as const }));
    expect(stream).toBeInstanceOf(Object);
    expect(contentOf((await collect(stream)).chunks)).toBe('echo: typed');
  });

  it('toReadableStream gives the chunks as newline-delimited JSON, made as they are read', async () => {
    const stream = await clientFor(router).create(ask('a b c', { stream: true as const }));
    const text = await new Response(stream.toReadableStream()).text();
    const lines = text.split('\n').filter((l) => l !== '');
    expect(contentOf(lines.map((l) => JSON.parse(l) as ChatCompletionChunk))).toBe('echo: a b c');
    expect(() => stream[Symbol.asyncIterator]()).toThrow(/read once/);
    expect(stream.controller.signal.aborted).toBe(false); // read to its end
  });

  it('a break aborts the controller, as openai-node\'s does; a stream read to its end is not aborted', async () => {
    const client = clientFor(router);
    const whole = await client.create(ask('one two', { stream: true as const }));
    expect(contentOf((await collect(whole)).chunks)).toBe('echo: one two');
    expect(whole.controller.signal.aborted).toBe(false);
    // Read through Node's Readable.from, which calls return() once the iteration has ended: not aborted either.
    const piped = await client.create(ask('one two', { stream: true as const }));
    expect(contentOf((await collect(Readable.from(piped))).chunks)).toBe('echo: one two');
    expect(piped.controller.signal.aborted).toBe(false);
    const stopped = await client.create(ask('one two three four five six', { stream: true as const }));
    let n = 0;
    for await (const _ of stopped) if (++n === 2) break;
    expect(stopped.controller.signal.aborted).toBe(true);
  });
});

describe('whole answers to a stream request', () => {
  it('a v1 router (v1 never streams): the request goes as v1 without stream, the whole answer arrives as chunks', async () => {
    const stream = await clientFor(v1Router).create(ask('old router', { stream: true as const, stream_options: { include_usage: true } }));
    expect(stream._metadata).toMatchObject({ protocol: 1, streamed: false, encryption_algorithm: PACKAGE_ALGORITHM });
    const { chunks } = await collect(stream);
    expect(contentOf(chunks)).toBe('echo: old router');
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 3 });
  });

  it('protocol: 1 against a v2 router: a v1 request with stream: true gets a whole v1 answer, not a 400', async () => {
    const stream = await clientFor(router, { protocol: 1 }).create(ask('v1 asks', { stream: true as const }));
    expect(stream._metadata).toMatchObject({ protocol: 1, streamed: false });
    expect(contentOf((await collect(stream)).chunks)).toBe('echo: v1 asks');
  });

  it('a v2 router whose model answers whole: a whole v2 answer, delivered as chunks', async () => {
    const whole = await startTestServer({ model: (request, ctx) => echoCompletion(request, ctx) });
    try {
      const stream = await clientFor(whole).create(ask('whole please', { stream: true as const }));
      expect(stream._metadata).toMatchObject({ protocol: 2, streamed: false, encryption_algorithm: V2_ANSWER_ALGORITHM });
      expect(contentOf((await collect(stream)).chunks)).toBe('echo: whole please');
    } finally {
      await whole.close();
    }
  });
});

describe('secrets of a stream', () => {
  it.each(['to its end', 'a break', 'an abort'] as const)('each record opens in secure memory, and it and K are zeroed when the stream ends (%s)', async (ending) => {
    const handed: Uint8Array[] = [];
    const freed: Uint8Array[] = [];
    const client = clientFor(router, { secureMemory: spyMemory(handed, freed) });
    const stream = await client.create(ask('zero every record please', { stream: true as const }));
    let n = 0;
    try {
      for await (const chunk of stream) {
        n++;
        if (n === 1) {
          // While the stream runs, the records' plaintexts were in secure memory: the first chunk's JSON
          // sat in one of the buffers handed out (zeroed once it was parsed).
          expect(chunk.choices[0]!.delta.role).toBe('assistant');
        }
        if (ending === 'a break' && n === 3) break;
        if (ending === 'an abort' && n === 3) stream.controller.abort();
      }
    } catch (err) {
      expect(ending).toBe('an abort');
      expect((err as Error).name).toBe('APIUserAbortError');
    }
    // K (32 bytes, random when freed) and the record buffers: every one zero now.
    expect(handed.some((v) => v.length === 32)).toBe(true);
    expect(freed.some((c) => c.length === 32 && c.some((b) => b !== 0))).toBe(true);
    const marker = Buffer.from('"content":"echo: "');
    expect(freed.some((c) => Buffer.from(c).indexOf(marker) !== -1)).toBe(true);
    // (The next request's K, made once this stream was over, as soon as it is made.)
    await vi.waitFor(() => expect(handed.every((view) => view.every((b) => b === 0))).toBe(true));
  });
});
