/** The Vercel AI SDK (ai@5 + @ai-sdk/openai-compatible) over createSecureFetch: a second fetch-taking SDK. */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { InterceptAction, InterceptedRequest, NomyoServer } from '@nomyo/server';
import { completionRequests, expectNoPlaintextOnWire, expectSealed, PLACEHOLDER_BASE_URL, ROUTER_PROTOCOLS, SECURE_PATH, secureFetchFor, startRouter } from './helpers.js';

const API_KEY = 'sk-nomyo-test';
const SECRET = 'meet me at the old mill';

describe.each(ROUTER_PROTOCOLS)('Vercel AI SDK over createSecureFetch, protocol $protocol', ({ version, router }) => {
  let server: NomyoServer;
  let nomyo: ReturnType<typeof createOpenAICompatible>;

  beforeAll(async () => {
    server = await startRouter({ ...router, apiKey: API_KEY });
    nomyo = createOpenAICompatible({
      name: 'nomyo',
      baseURL: PLACEHOLDER_BASE_URL,
      apiKey: API_KEY,
      includeUsage: true,
      fetch: secureFetchFor(server),
    });
  });
  afterAll(() => server?.close());
  beforeEach(() => server.clearRequests());

  describe('generate and stream', () => {
    it('generateText', async () => {
      const result = await generateText({ model: nomyo.chatModel('echo'), prompt: SECRET, maxRetries: 0 });
      expect(result.text).toBe(`echo: ${SECRET}`);
      expect(result.finishReason).toBe('stop');
      expect(result.usage.totalTokens).toBeGreaterThan(0);
      expectSealed(completionRequests(server)[0]!.body, [SECRET], version);
    });

    it('streamText', async () => {
      const result = streamText({ model: nomyo.chatModel('echo'), prompt: `${SECRET}, tonight, without fail`, maxRetries: 0 });
      const parts: string[] = [];
      for await (const part of result.textStream) parts.push(part);
      expect(parts.join('')).toBe(`echo: ${SECRET}, tonight, without fail`);
      expect(await result.finishReason).toBe('stop');
      expect((await result.usage).outputTokens).toBe(10);
      expectNoPlaintextOnWire(server, [SECRET]);
    });

    it('tool calls, generated and streamed', async () => {
      const tools = {
        lookup: tool({ description: 'look something up', inputSchema: jsonSchema<{ input: string }>({ type: 'object', properties: { input: { type: 'string' } } }) }),
      };
      const generated = await generateText({ model: nomyo.chatModel('echo'), prompt: 'call: the ledger', tools, maxRetries: 0 });
      expect(generated.finishReason).toBe('tool-calls');
      expect(generated.toolCalls.map((c) => [c.toolName, c.input])).toEqual([['lookup', { input: 'the ledger' }]]);

      const streamed = streamText({ model: nomyo.chatModel('echo'), prompt: 'call: the ledger', tools, maxRetries: 0 });
      expect((await streamed.toolCalls).map((c) => [c.toolName, c.input])).toEqual([['lookup', { input: 'the ledger' }]]);
      expectNoPlaintextOnWire(server, ['the ledger']);
    });
  });
});

/**
 * The AI SDK retries by the status alone (every 5xx, with `maxRetries` 2 by default): unlike openai's
 * SDK it reads no `x-should-retry`. So the README has it pass `maxRetries: 0` and lets
 * `createSecureFetch`'s own `maxRetries` retry as core does (429 and 503 only).
 */
describe('Vercel AI SDK retries', () => {
  let server: NomyoServer;
  let script: ((request: InterceptedRequest) => InterceptAction | undefined) | undefined;
  beforeAll(async () => {
    server = await startRouter({ apiKey: API_KEY, interceptor: (request) => (request.path === SECURE_PATH ? script?.(request) : undefined) });
  });
  afterAll(() => server?.close());
  beforeEach(() => server.clearRequests());
  const provider = (maxRetries: number) =>
    createOpenAICompatible({ name: 'nomyo', baseURL: PLACEHOLDER_BASE_URL, apiKey: API_KEY, fetch: secureFetchFor(server, { maxRetries }) });

  it('with maxRetries: 0 and createSecureFetch({ maxRetries: 2 }): a 503 retried by core, a 502 not at all', async () => {
    script = (request) => (request.attempt === 1 ? { status: 503 } : undefined);
    const result = await generateText({ model: provider(2).chatModel('echo'), prompt: SECRET, maxRetries: 0 });
    expect(result.text).toBe(`echo: ${SECRET}`);
    expect(completionRequests(server).map((r) => r.response?.status)).toEqual([503, 200]);

    server.clearRequests();
    script = () => ({ status: 502, body: { detail: 'the inference backend closed the connection before answering' } });
    await expect(generateText({ model: provider(2).chatModel('echo'), prompt: SECRET, maxRetries: 0 })).rejects.toThrow(/closed the connection/);
    expect(completionRequests(server)).toHaveLength(1);
  });

  it('left to its default, it sends a 502 three times (why the README says maxRetries: 0)', async () => {
    script = () => ({ status: 502, body: { detail: 'the inference backend closed the connection before answering' } });
    await expect(generateText({ model: provider(0).chatModel('echo'), prompt: SECRET })).rejects.toThrow();
    expect(completionRequests(server)).toHaveLength(3);
  });
});
