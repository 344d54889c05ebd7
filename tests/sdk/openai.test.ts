/** The official `openai` package driving createSecureFetch against the reference router: the happy paths. */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { echoModel, type ChatRequest, type NomyoServer } from '@nomyo/server';
import { completionRequests, expectNoPlaintextOnWire, expectSealed, PLACEHOLDER_BASE_URL, ROUTER_PROTOCOLS, SECURE_PATH, secureFetchFor, startRouter } from './helpers.js';

const API_KEY = 'sk-nomyo-test';
const SECRET = 'my bank PIN is 4711';

describe.each(ROUTER_PROTOCOLS)('openai SDK over createSecureFetch, protocol $protocol', ({ protocol, version, router }) => {
  let server: NomyoServer;
  let seen: ChatRequest[] = [];
  let openai: OpenAI;

  beforeAll(async () => {
    server = await startRouter({
      ...router,
      apiKey: API_KEY,
      // The decrypted request as the router sees it, to check what was sealed.
      model: (request, context) => {
        seen.push(request);
        return echoModel(request, context);
      },
    });
    openai = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: API_KEY, fetch: secureFetchFor(server) });
  });
  afterAll(() => server?.close());
  beforeEach(() => {
    server.clearRequests();
    seen = [];
  });

  describe('the happy paths', () => {
    it('creates a chat completion, sealed on the wire', async () => {
      const completion = await openai.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: SECRET }] });
      expect(completion.object).toBe('chat.completion');
      expect(completion.choices[0]?.message.content).toBe(`echo: ${SECRET}`);
      expect(completion.choices[0]?.finish_reason).toBe('stop');
      const metadata = (completion as unknown as { _metadata: { is_encrypted: boolean; protocol: number } })._metadata;
      expect(metadata.is_encrypted).toBe(true);
      expect(metadata.protocol).toBe(protocol);
      expect(completion._request_id).toMatch(/^[0-9a-f-]{36}$/);

      const [request] = completionRequests(server);
      expect(request?.headers.authorization).toBe(`Bearer ${API_KEY}`);
      expect(request?.headers['x-payload-id']).toBe(completion._request_id);
      expectSealed(request!.body, [SECRET, 'echo'], version);
      // v2 sends no client public key; v1 must.
      expect(request?.headers['x-public-key'] === undefined).toBe(protocol === 2);
      expectNoPlaintextOnWire(server, [SECRET]);
      // Only the protocol's headers leave: none of the SDK's own (X-Stainless-*, OpenAI-*).
      expect(Object.keys(request!.headers).filter((h) => h.startsWith('x-stainless') || h.startsWith('openai'))).toEqual([]);
    });

    it('round-trips tool calls', async () => {
      const tools = [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { input: { type: 'string' } } } } }];
      const first = await openai.chat.completions.create({ model: 'echo', tools, messages: [{ role: 'user', content: 'call: account 12345' }] });
      const message = first.choices[0]!.message;
      expect(first.choices[0]?.finish_reason).toBe('tool_calls');
      const call = message.tool_calls?.[0];
      expect(call?.type).toBe('function');
      if (call?.type !== 'function') throw new Error('expected a function call');
      expect(call.function.name).toBe('lookup');
      expect(JSON.parse(call.function.arguments)).toEqual({ input: 'account 12345' });

      const second = await openai.chat.completions.create({
        model: 'echo',
        tools,
        messages: [
          { role: 'user', content: 'call: account 12345' },
          message,
          { role: 'tool', tool_call_id: call.id, content: 'balance 99' },
        ],
      });
      expect(second.choices[0]?.message.content).toBe('echo: balance 99');
      expectNoPlaintextOnWire(server, ['account 12345', 'balance 99']);
    });

    it('streams chunks (v2: as the router streams them; v1: made from the whole answer), with usage', async () => {
      const stream = await openai.chat.completions.create({
        model: 'echo',
        messages: [{ role: 'user', content: `${SECRET}, said slowly and at some length so it splits` }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);

      expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
      expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
      const content = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      expect(content).toBe(`echo: ${SECRET}, said slowly and at some length so it splits`);
      expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
      expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason).toBe('stop');
      const last = chunks[chunks.length - 1]!;
      expect(last.choices).toEqual([]);
      expect(last.usage?.total_tokens).toBe((last.usage?.prompt_tokens ?? 0) + (last.usage?.completion_tokens ?? 0));
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1);

      // v2 asks the router to stream (sealed); v1 never streams: the router gets a plain request.
      if (protocol === 2) expect(seen[0]).toMatchObject({ stream: true, stream_options: { include_usage: true } });
      else expect(seen[0]).not.toHaveProperty('stream');
      if (protocol === 1) expect(seen[0]).not.toHaveProperty('stream_options');
      expectNoPlaintextOnWire(server, [SECRET]);
    });

    it('streams tool-call deltas that the SDK assembles', async () => {
      const runner = openai.chat.completions.stream({
        model: 'echo',
        tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
        messages: [{ role: 'user', content: 'call: the secret vault' }],
      });
      const final = await runner.finalChatCompletion();
      const call = final.choices[0]?.message.tool_calls?.[0];
      expect(final.choices[0]?.finish_reason).toBe('tool_calls');
      expect(call?.type === 'function' && call.function.name).toBe('lookup');
      expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ input: 'the secret vault' });
      expectNoPlaintextOnWire(server, ['the secret vault']);
    });

    it('sends the security tier as a header, never in the sealed payload', async () => {
      await openai.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'hi' }], security_tier: 'high' } as never);
      await openai.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'X-Security-Tier': 'maximum' } });
      expect(completionRequests(server).map((r) => r.headers['x-security-tier'])).toEqual(['high', 'maximum']);
      expect(seen.some((r) => 'security_tier' in r)).toBe(false);
    });

    it('reports a user abort as APIUserAbortError', async () => {
      const slow = await startRouter({ ...router, interceptor: (r) => (r.path === SECURE_PATH ? { delayMs: 5_000 } : undefined) });
      try {
        const client = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: 'k', fetch: secureFetchFor(slow) });
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 300);
        const call = client.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }, { signal: controller.signal });
        const started = Date.now();
        await expect(call).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
        expect(Date.now() - started).toBeLessThan(3_000);
      } finally {
        await slow.close();
      }
    });
  });
});
