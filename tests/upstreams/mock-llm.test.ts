/**
 * A third-party upstream: @dwmkerr/mock-llm behind `nomyo-server --upstream`, as a new user sets it
 * up. Its answers leave out `created` and each choice's `index`, its chunks `created`; the router
 * fills them in (packages/server/src/envelope.ts) and the client gets the answer mock-llm gave:
 * whole and streamed, v2 and v1, through SecureChatCompletion and through the openai SDK. Its error
 * answers come back sealed, never in the clear on the wire or in the router's log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { APIError, InvalidRequestError, RateLimitError, SecureChatCompletion, createSecureFetch, type ChatCompletionChunk } from '@nomyo/core';
import { startRouterProcess, type RouterProcess } from '../nginx/router-cli.js';
import { startMockLlm, type MockLlm } from './mock-llm.js';

// Text the upstream puts in its errors: it must reach the caller only sealed.
const UPSTREAM_SECRET = 'upstream-secret-7f3a';
const errorRule = (word: string, status: number, type: string, code: string) => `
  - path: "/v1/chat/completions"
    match: "contains(body.messages[-1].content, '${word}')"
    response:
      status: ${status}
      content: '{"error":{"message":"${UPSTREAM_SECRET} ${word} refused","type":"${type}","param":null,"code":"${code}"}}'`;

// The default echo rule is mock-llm's own (its README); the rest are the test's.
const CONFIG = `
streaming:
  chunkSize: 6
  chunkIntervalMs: 2
rules:
  - path: "/v1/chat/completions"
    method: "POST"
    match: "@"
    response:
      status: 200
      content: |
        {
          "id": "chatcmpl-{{timestamp}}",
          "object": "chat.completion",
          "model": "{{jmes request body.model}}",
          "choices": [{
            "message": {
              "role": "assistant",
              "content": "{{jmes request body.messages[-1].content}}"
            },
            "finish_reason": "stop"
          }]
        }
${errorRule('error-400', 400, 'invalid_request_error', 'context_length_exceeded')}
${errorRule('error-429', 429, 'rate_limit_error', 'rate_limited')}
${errorRule('error-500', 500, 'server_error', 'overloaded')}
  - path: "/v1/chat/completions"
    match: "contains(body.messages[-1].content, 'call-a-tool')"
    response:
      status: 200
      content: '{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\":\\"Oslo\\"}"}}]},"finish_reason":"tool_calls"}]}'
  - path: "/v1/chat/completions"
    match: "contains(body.messages[-1].content, 'not-a-completion')"
    response:
      status: 200
      content: '{"object":"list","data":[{"id":"m","object":"model"}]}'
`;

const PROMPT = 'tell me about the weather in Oslo this week please';
const MODEL = 'mock-model';
const KEY_SIZE = 2048; // the v1 client's own key pair

let mock: MockLlm;
let router: RouterProcess;
/** Every response body the clients received, as it was on the wire. */
const wire: Array<Promise<string>> = [];
const tap: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  wire.push(res.clone().text().catch(() => ''));
  return res;
};

beforeAll(async () => {
  mock = await startMockLlm(CONFIG);
  router = await startRouterProcess(['--upstream', mock.baseUrl]);
});
afterAll(async () => {
  await router?.close();
  await mock?.close();
});

const client = (protocol: 1 | 2) => new SecureChatCompletion({ baseUrl: router.url, allowHttp: true, protocol, keySize: KEY_SIZE, maxRetries: 0, fetch: tap });
const ask = (content: string) => ({ model: MODEL, messages: [{ role: 'user' as const, content }] });

/** What mock-llm itself answers, in the clear: what the official Python client gets through the router. */
async function direct(content: string, stream = false): Promise<Response> {
  return fetch(`${mock.baseUrl}/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...ask(content), stream }) });
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe.each([2, 1] as const)('through nomyo-server --upstream <mock-llm>, protocol %i', (protocol) => {
  it('a whole answer: what mock-llm sent, created and index filled in by the router', async () => {
    const plain = (await (await direct(PROMPT)).json()) as Record<string, unknown>;
    expect(plain.created).toBeUndefined(); // the shape the issue was about
    const before = Math.floor(Date.now() / 1000);
    const completion = await client(protocol).create(ask(PROMPT));
    expect(completion.choices).toEqual([{ index: 0, message: { role: 'assistant', content: PROMPT }, finish_reason: 'stop' }]);
    expect(completion.id).toMatch(/^chatcmpl-\d+$/); // mock-llm's own id, kept
    expect(completion.model).toBe(MODEL);
    expect(completion.created).toBeGreaterThanOrEqual(before - 1);
    expect(completion.created).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(completion._metadata.protocol).toBe(protocol);
  });

  it('a streamed answer: the chunks mock-llm sent, in order (v1 gets it whole, as chunks)', async () => {
    const stream = await client(protocol).create({ ...ask(PROMPT), stream: true });
    const chunks = await collect(stream);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(PROMPT);
    expect(chunks.at(-1)?.choices.at(-1)?.finish_reason ?? chunks.flatMap((c) => c.choices).at(-1)?.finish_reason).toBe('stop');
    for (const chunk of chunks) expect(chunk).toMatchObject({ object: 'chat.completion.chunk', model: MODEL, created: expect.any(Number) });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    if (protocol === 2) {
      expect(stream._metadata.streamed).toBe(true);
      // mock-llm's 6-character pieces arrive as they are: one record each, and a role-only first.
      expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(PROMPT.length / 6));
    } else {
      expect(stream._metadata.streamed).toBe(false);
    }
  });

  it('a tool call without content or index: content null and index 0 filled in, the call unchanged', async () => {
    const completion = await client(protocol).create(ask('please call-a-tool'));
    expect(completion.choices[0]).toEqual({
      index: 0,
      message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      finish_reason: 'tool_calls',
    });
  });

  it.each([
    ['error-400', 400, InvalidRequestError, 'invalid_request_error', 'context_length_exceeded'],
    ['error-429', 429, RateLimitError, 'rate_limit_error', 'rate_limited'],
    ['error-500', 500, APIError, 'server_error', 'overloaded'],
  ] as const)('its %s answer is an error of the right type, its text, type and code sealed (v2) or generic (v1)', async (word, status, errorClass, type, code) => {
    const err = await client(protocol).create(ask(`trigger ${word}`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(errorClass);
    if (status === 500) {
      // A 5xx is the backend failing: the router's own words, for both versions.
      expect((err as APIError).status).toBe(502);
      expect((err as Error).message).not.toContain(UPSTREAM_SECRET);
      expect((err as APIError).error?.code ?? null).not.toBe(code);
    } else if (protocol === 2) {
      expect((err as APIError).status).toBe(status);
      expect((err as Error).message).toContain(`${UPSTREAM_SECRET} ${word} refused`);
      // mock-llm's own type and code, as openai-node's err.error and err.type would give them.
      expect((err as APIError).error).toEqual({ message: `${UPSTREAM_SECRET} ${word} refused`, type, code, param: null });
      expect((err as APIError).type).toBe(type);
    } else {
      expect((err as APIError).status).toBe(status === 429 ? 429 : 400);
      expect((err as Error).message).not.toContain(UPSTREAM_SECRET);
      expect(err).toMatchObject({ sealed: false, error: undefined, type: undefined });
    }
  });

  it('an error in a stream request: sealed in the final record with its type and code (v2), generic (v1)', async () => {
    const outcome = await (async () => collect(await client(protocol).create({ ...ask('trigger error-400'), stream: true })))().catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(APIError);
    if (protocol === 2) {
      expect((outcome as Error).message).toContain(`${UPSTREAM_SECRET} error-400 refused`);
      expect((outcome as APIError).error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded' });
    } else {
      expect((outcome as Error).message).not.toContain(UPSTREAM_SECRET);
      expect((outcome as APIError).error).toBeUndefined();
    }
  });

  it('a 200 that is no completion at all is refused by the router: a sealed reason (v2), a 502 (v1)', async () => {
    const err = await client(protocol).create(ask('not-a-completion')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(502);
    if (protocol === 2) expect((err as Error).message).toBe('502: the inference backend sent no chat.completion: choices must be present');
  });
});

describe('the openai SDK through createSecureFetch', () => {
  const sdk = () => new OpenAI({ apiKey: 'unused', baseURL: 'https://router.invalid/v1', maxRetries: 0, fetch: createSecureFetch({ routerUrl: router.url, allowHttp: true }) });

  it('gets the whole answer', async () => {
    const completion = await sdk().chat.completions.create(ask(PROMPT));
    expect(completion.choices[0]?.message.content).toBe(PROMPT);
    expect(typeof completion.created).toBe('number');
  });

  it('gets the streamed answer as it came', async () => {
    const stream = await sdk().chat.completions.create({ ...ask(PROMPT), stream: true });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      chunks++;
    }
    expect(text).toBe(PROMPT);
    expect(chunks).toBeGreaterThan(2);
  });

  it.each([false, true])("gets the upstream's error (stream: %s) as an APIError with its text, type and code, sealed on the way", async (stream) => {
    const err = await (async () => {
      const answer = await sdk().chat.completions.create({ ...ask('trigger error-400'), stream });
      if (stream) for await (const _chunk of answer as AsyncIterable<unknown>);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    // What api.openai.com's error would give: code written for the SDK branches on these.
    expect(err).toMatchObject({ code: 'context_length_exceeded', type: 'invalid_request_error' });
    if (!stream) expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((err as Error).message).toContain(`${UPSTREAM_SECRET} error-400 refused`);
  });
});

describe('what went over the wire', () => {
  it("never carried the upstream's error text, nor did the router's log", async () => {
    const bodies = await Promise.all(wire);
    expect(bodies.length).toBeGreaterThan(15);
    for (const body of bodies) expect(body).not.toContain(UPSTREAM_SECRET);
    // Meanwhile mock-llm did send it: the check above is not vacuous.
    expect(await (await direct('trigger error-400')).text()).toContain(UPSTREAM_SECRET);
    expect(router.stderr()).not.toContain(UPSTREAM_SECRET);
  });
});
