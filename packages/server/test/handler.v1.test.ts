import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS, PACKAGE_ALGORITHM, PATHS, PROTOCOL_VERSION, openPackage, type EncryptedPackage } from '@nomyo/core/protocol';
import { PROCESSING_TIME_HEADER, startServer, type NomyoServer } from '../src/index.js';
import { CHAT, VECTOR_KEY_FILE, VECTOR_PUBLIC_KEY_FILE, clientKey, post, pythonQuote, sealRequest, secureCompletion } from './helpers.js';

let server: NomyoServer;
beforeAll(async () => {
  server = await startServer({ keyFile: VECTOR_KEY_FILE });
});
afterAll(() => server.close());

describe('GET /pki/public_key', () => {
  it('answers the SPKI PEM of the server key as text/plain', async () => {
    const res = await fetch(server.url + PATHS.publicKey);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const pem = await res.text();
    expect(pem.replace(/\s/g, '')).toBe(readFileSync(VECTOR_PUBLIC_KEY_FILE, 'utf8').replace(/\s/g, ''));
    expect(pem).toBe(server.publicKeyPem);
    expect(server.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('POST /v1/chat/secure_completion', () => {
  it('opens the request, echoes the last user message and seals the answer to the caller', async () => {
    const payloadId = crypto.randomUUID();
    const before = Math.floor(Date.now() / 1000);
    const { res, pkg, completion } = await secureCompletion(server.url, CHAT, { [HEADERS.payloadId]: payloadId });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(pkg.version).toBe(PROTOCOL_VERSION);
    expect(pkg.algorithm).toBe(PACKAGE_ALGORITHM);
    expect(pkg.processed_at).toBeGreaterThanOrEqual(before);
    expect(Number(res.headers.get(PROCESSING_TIME_HEADER))).toBeGreaterThan(0);
    expect(completion).toMatchObject({
      id: `chatcmpl-echo-${payloadId}`,
      object: 'chat.completion',
      model: 'test-model',
      choices: [{ index: 0, message: { role: 'assistant', content: 'echo: hello there world' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    });
    expect(completion.created).toBeGreaterThanOrEqual(before);
  });

  it('accepts X-Public-Key with "/" escaped (JS client) and raw (Python client)', async () => {
    const { pem } = await clientKey();
    expect(encodeURIComponent(pem)).toContain('%2F');
    expect(pythonQuote(pem)).toContain('/');
    for (const encoded of [encodeURIComponent(pem), pythonQuote(pem)]) {
      const { completion } = await secureCompletion(server.url, CHAT, { [HEADERS.publicKey]: encoded });
      expect(completion.choices[0].message.content).toBe('echo: hello there world');
    }
  });

  it('joins the text parts of array content', async () => {
    const request = {
      model: 'm',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ignored' },
        { role: 'user', content: [{ type: 'text', text: 'part one' }, { type: 'image_url', image_url: { url: 'x' } }, { type: 'text', text: 'part two' }] },
      ],
    };
    const { completion } = await secureCompletion(server.url, request);
    expect(completion.choices[0].message.content).toBe('echo: part one part two');
  });

  it('answers a tool call when tools are given and the message starts with "call:"', async () => {
    const payloadId = crypto.randomUUID();
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const request = { model: 'm', tools, messages: [{ role: 'user', content: 'call: Paris tomorrow' }] };
    const { completion } = await secureCompletion(server.url, request, { [HEADERS.payloadId]: payloadId });
    expect(completion.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: `call_echo_${payloadId}`, type: 'function', function: { name: 'get_weather', arguments: '{"input":"Paris tomorrow"}' } }],
      },
    });

    // The tool's result comes back: the echo model answers it instead of calling again.
    const followUp = {
      ...request,
      messages: [...request.messages, completion.choices[0].message, { role: 'tool', tool_call_id: `call_echo_${payloadId}`, content: 'sunny' }],
    };
    const second = await secureCompletion(server.url, followUp);
    expect(second.completion.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'echo: sunny' } });
  });

  it('accepts every security tier', async () => {
    for (const tier of ['standard', 'high', 'maximum']) {
      const { completion } = await secureCompletion(server.url, CHAT, { [HEADERS.securityTier]: tier });
      expect(completion.object).toBe('chat.completion');
    }
  });

  it('accepts any Content-Type, as deployed clients vary', async () => {
    const { completion } = await secureCompletion(server.url, CHAT, { [HEADERS.contentType]: 'application/json' });
    expect(completion.object).toBe('chat.completion');
  });

  it('answers a v1 request that asks to stream with a whole v1 answer, as deployed routers do (core\'s client never sends one)', async () => {
    const serverPem = await (await fetch(server.url + PATHS.publicKey)).text();
    const pkg = await sealRequest(serverPem, { ...CHAT, stream: true, stream_options: { include_usage: true } });
    const res = await post(server.url, JSON.stringify(pkg), { Accept: 'text/event-stream, application/json' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const answer = (await res.json()) as EncryptedPackage;
    expect(answer.version).toBe(PROTOCOL_VERSION);
    const completion = JSON.parse(new TextDecoder().decode(await openPackage(answer, (await clientKey()).pair.privateKey)));
    expect(completion).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'echo: hello there world' }, finish_reason: 'stop' }] });
  });
});

describe('request packages made by the independent implementation (shared vectors)', () => {
  it.each(['request-basic', 'request-unicode', 'request-150k'])('%s opens and is answered', async (name) => {
    const vector = JSON.parse(readFileSync(new URL(`../../../test-vectors/v1/valid/${name}.json`, import.meta.url), 'utf8')) as {
      package: unknown;
      plaintext_utf8: string;
    };
    const request = JSON.parse(vector.plaintext_utf8) as { model: string; messages: Array<{ content: string }> };
    const { pem } = await clientKey();
    const res = await post(server.url, JSON.stringify(vector.package), { [HEADERS.publicKey]: pythonQuote(pem) });
    expect(res.status).toBe(200);
    const plaintext = await openPackage(await res.json(), (await clientKey()).pair.privateKey);
    const completion = JSON.parse(new TextDecoder().decode(plaintext));
    expect(completion.model).toBe(request.model);
    expect(completion.choices[0].message.content).toBe(`echo: ${request.messages.at(-1)?.content}`);
  });
});
