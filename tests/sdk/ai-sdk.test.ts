/** The Vercel AI SDK (ai@5 + @ai-sdk/openai-compatible) over createSecureFetch: a second fetch-taking SDK. */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { completionRequests, expectNoPlaintextOnWire, expectSealed, PLACEHOLDER_BASE_URL, ROUTER_PROTOCOLS, secureFetchFor, startRouter } from './helpers.js';

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
