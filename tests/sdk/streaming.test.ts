/**
 * Streamed answers through the SDKs people use: the official `openai` package (v6) and the Vercel AI
 * SDK's streamText, both over createSecureFetch. Tokens reach the SDK as the router streams them (not
 * replayed at the end), an error sealed into the stream's end is the SDK's own APIError after the
 * chunks before it, and a stream cut short is never a normal end.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { streamText } from 'ai';
import OpenAI from 'openai';
import { Stream } from 'openai/streaming';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTECTION_HEADERS, SecureChatCompletion, StreamTruncatedError } from '@nomyo/core';
import { UpstreamError, echoModelWith, type CompletionModel, type NomyoServer } from '@nomyo/server';
import { startProxy, type Proxy } from '../integration/proxy.js';
import { KEY_SIZE, PLACEHOLDER_BASE_URL, secureFetchFor, startRouter } from './helpers.js';

const DELAY_MS = 60;
const WORDS = 'one two three four five six seven';
const ask = (content = WORDS) => ({ model: 'echo', messages: [{ role: 'user' as const, content }] });

/** The echo model a pause between words, except for prompts that ask it to fail part-way. */
const slowEcho = echoModelWith({ delayMs: DELAY_MS });
const model: CompletionModel = (request, context) => {
  const prompt = (request.messages.at(-1) as { content: string }).content;
  if (!prompt.startsWith('fail part-way')) return slowEcho(request, context);
  // "fail part-way without a code": a model server's error whose code is null, as api.openai.com's often is.
  const code = prompt === 'fail part-way' ? 'context_length_exceeded' : null;
  return (async function* () {
    yield { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'echo', choices: [{ index: 0, delta: { role: 'assistant', content: 'so far ' }, finish_reason: null }] };
    throw new UpstreamError(400, 'generic', { message: 'the context window is full', type: 'invalid_request_error', code, status: 400 });
  })();
};

let router: NomyoServer;
let proxy: Proxy; // cuts streams short on request
beforeAll(async () => {
  router = await startRouter({ model });
  proxy = await startProxy(router.url);
});
afterAll(async () => {
  await proxy.close();
  await router.close();
});

const openaiFor = (url: string) => new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: 'k', maxRetries: 0, fetch: secureFetchFor({ url } as NomyoServer) });

describe('openai@6 over createSecureFetch', () => {
  it('what protected a stream is on its response, through .withResponse()', async () => {
    const { data, response } = await openaiFor(router.url).chat.completions.create({ ...ask('hi'), stream: true }).withResponse();
    expect(response.headers.get(PROTECTION_HEADERS.protocol)).toBe('2');
    expect(response.headers.get(PROTECTION_HEADERS.streamed)).toBe('true');
    expect(response.headers.get(PROTECTION_HEADERS.encryptionAlgorithm)).toBe('aes256gcm-hkdf-sha256-stream');
    let text = '';
    for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: hi');
  });

  it('stream: true yields each token as the router streams it', async () => {
    const stream = await openaiFor(router.url).chat.completions.create({ ...ask(), stream: true });
    const at: number[] = [];
    let text = '';
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta.content;
      if (piece) (text += piece, at.push(performance.now()));
    }
    expect(text).toBe(`echo: ${WORDS}`);
    // Seven pauses between the words: replayed at the end they would all arrive at once.
    expect(at.at(-1)! - at[0]!).toBeGreaterThan(DELAY_MS * 7 * 0.5);
  });

  it('an error sealed into the stream’s end: the chunks before it, then the SDK’s own APIError with its message, type and code', async () => {
    const stream = await openaiFor(router.url).chat.completions.create({ ...ask('fail part-way'), stream: true });
    let text = '';
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e: unknown) => e);
    expect(text).toBe('so far ');
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toMatch(/the context window is full/);
    expect(err).toMatchObject({ code: 'context_length_exceeded', type: 'invalid_request_error' });
  });

  it('a sealed error whose code is null reaches the SDK with code null, as the model server gave it', async () => {
    const stream = await openaiFor(router.url).chat.completions.create({ ...ask('fail part-way without a code'), stream: true });
    const err = await (async () => {
      for await (const _ of stream);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ code: null, type: 'invalid_request_error' });
  });

  it('a stream cut short is an error, never a normal end', async () => {
    proxy.hooks = {
      answer: (answer, request) => {
        if (request.method === 'POST') answer.body = answer.body.subarray(0, answer.body.lastIndexOf('event: nomyo-final'));
      },
    };
    try {
      const stream = await openaiFor(proxy.url).chat.completions.create({ ...ask(), stream: true });
      let text = '';
      const err = await (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })().catch((e: unknown) => e);
      expect(text).toBe(`echo: ${WORDS}`);
      expect(err).toBeInstanceOf(StreamTruncatedError);
    } finally {
      proxy.hooks = {};
    }
  });

  it('Stream.fromReadableStream reads back what toReadableStream gives (a stream handed from a server to a browser)', async () => {
    const client = new SecureChatCompletion({ baseUrl: router.url, allowHttp: true, keySize: KEY_SIZE });
    const ours = await client.create({ ...ask('hand me over'), stream: true });
    const readBack = Stream.fromReadableStream<OpenAI.Chat.Completions.ChatCompletionChunk>(ours.toReadableStream(), new AbortController());
    let text = '';
    for await (const chunk of readBack) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: hand me over');
  });
});

describe('Vercel AI SDK streamText over createSecureFetch', () => {
  it('textStream yields the text as the router streams it', async () => {
    const nomyo = createOpenAICompatible({ name: 'nomyo', baseURL: PLACEHOLDER_BASE_URL, apiKey: 'k', fetch: secureFetchFor(router) });
    const result = streamText({ model: nomyo.chatModel('echo'), prompt: WORDS, maxRetries: 0 });
    const at: number[] = [];
    let text = '';
    for await (const part of result.textStream) (text += part, at.push(performance.now()));
    expect(text).toBe(`echo: ${WORDS}`);
    expect(at.at(-1)! - at[0]!).toBeGreaterThan(DELAY_MS * 7 * 0.5);
    expect(await result.finishReason).toBe('stop');
  });

  it('an error sealed into the stream’s end reaches onError and the stream’s error part', async () => {
    const nomyo = createOpenAICompatible({ name: 'nomyo', baseURL: PLACEHOLDER_BASE_URL, apiKey: 'k', fetch: secureFetchFor(router) });
    const errors: unknown[] = [];
    const result = streamText({ model: nomyo.chatModel('echo'), prompt: 'fail part-way', maxRetries: 0, onError: ({ error }) => void errors.push(error) });
    let text = '';
    for await (const part of result.fullStream) if (part.type === 'text-delta') text += part.text;
    expect(text).toBe('so far ');
    expect(JSON.stringify(errors)).toMatch(/the context window is full/);
  });
});
