/**
 * The schema check on the full client path: hostile plaintexts sealed by the reference router, so
 * the encryption is valid and only the decrypted answer is wrong.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSecureFetch, SecurityError } from '@nomyo/core';
import { importRsaPublicKey, pemToDer, sealPackage } from '@nomyo/core/protocol';
import type { NomyoServer, RequestRecord } from '@nomyo/server';
import { clientFor, hello, startTestServer } from './support.js';

const NOT_A_COMPLETION = /^the decrypted answer is not a chat\.completion: /;
const base = { id: 'c', object: 'chat.completion', created: 1, model: 'm' };
const valid = (message: object, extra: object = {}) => ({ ...base, ...extra, choices: [{ index: 0, message, finish_reason: 'stop' }] });
// Own "__proto__" keys, as a hostile router's JSON has them (an object literal would set the prototype instead).
const withProto = (json: string): unknown => JSON.parse(json);

const prototypeState = () => Object.getOwnPropertyNames(Object.prototype).sort().join();
const before = prototypeState();
afterEach(() => {
  expect(prototypeState()).toBe(before);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

describe('answers the router sealed, that are not chat.completions', () => {
  let server: NomyoServer;
  let answer: unknown;
  beforeAll(async () => {
    server = await startTestServer({ model: () => answer });
  });
  afterAll(() => server.close());

  it.each([
    ['a message of {"a":{"b":{"c":null}}} with no role', valid({ a: { b: { c: null } } }), 'choices[0].message.role must be present'],
    ['content {"a": 1}', valid({ role: 'assistant', content: { a: 1 } }), 'choices[0].message.content must be a string or null'],
    ['an empty choices array', { ...base, choices: [] }, 'choices must be an array of at least 1'],
    ['a custom tool call without its custom', valid({ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'custom', function: { name: 'f', arguments: '{}' } }] }), 'choices[0].message.tool_calls[0].custom must be present'],
    ['__proto__ at the top', withProto(`{"__proto__":{"polluted":true},${JSON.stringify(valid({ role: 'assistant', content: 'a' })).slice(1)}`), '__proto__ must be absent'],
    ['__proto__ in a choice', withProto(`{${JSON.stringify(base).slice(1, -1)},"choices":[{"__proto__":{"polluted":true},"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}]}`), 'choices[0].__proto__ must be absent'],
    ['__proto__ in a message', withProto(JSON.stringify(valid({ role: 'assistant', content: 'a', x: 1 })).replace('"x":1', '"__proto__":{"polluted":true}')), 'choices[0].message.__proto__ must be absent'],
  ])('%s → SecurityError', async (_name, hostile, reason) => {
    answer = hostile;
    const err = await clientFor(server, { maxRetries: 0 }).create(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(NOT_A_COMPLETION);
    expect((err as Error).message).toContain(reason);
  });

  it("an envelope another router passed on as its upstream sent it (no id, object, created, model or index): the answer, not a SecurityError", async () => {
    // A model function's output is sealed as it is (only an --upstream is normalised): a router that is not ours.
    answer = { choices: [{ message: { role: 'assistant', content: 'bare' }, finish_reason: 'stop' }] };
    const completion = await clientFor(server).create(hello);
    expect(completion.choices).toEqual([{ index: 0, message: { role: 'assistant', content: 'bare' }, finish_reason: 'stop' }]);
    expect(completion.object).toBe('chat.completion');
    expect(completion.created).toBeUndefined();
    // The same through a stream request: the whole answer as chunks, their envelope as bare.
    const chunks = [];
    for await (const chunk of await clientFor(server).create({ ...hello, stream: true })) chunks.push(chunk);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('bare');
    expect(chunks.every((c) => c.id === undefined && c.object === 'chat.completion.chunk')).toBe(true);
  });

  it('a message without content (beside tool calls, or of reasoning only) comes back with content: null', async () => {
    const call = { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } };
    answer = valid({ role: 'assistant', tool_calls: [call] });
    const completion = await clientFor(server).create(hello);
    expect(completion.choices[0]!.message).toEqual({ role: 'assistant', content: null, tool_calls: [call] });
    answer = valid({ role: 'assistant', reasoning_content: 'hmm' });
    expect((await clientFor(server).create(hello)).choices[0]!.message).toEqual({ role: 'assistant', reasoning_content: 'hmm', content: null });
  });
});

describe('plaintexts no router would serialize, sealed by the test itself', () => {
  let server: NomyoServer;
  let plaintext = '';
  // The client's own public key is in the request: seal any plaintext to it, as a hostile router could.
  const reseal = async (request: RequestRecord) => {
    const pem = decodeURIComponent(String(request.headers['x-public-key']));
    return sealPackage(new TextEncoder().encode(plaintext), await importRsaPublicKey(pemToDer(pem, 'PUBLIC KEY')), { processed_at: 1 });
  };
  beforeAll(async () => {
    // A v1 router: its answers are sealed to the client's public key, which the test can do too.
    server = await startTestServer({ protocol: 1, tamperResponse: (_pkg, request) => reseal(request) });
  });
  afterAll(() => server.close());

  const ok = JSON.stringify(valid({ role: 'assistant', content: 'fine' }));
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

  it.each([
    ['a 100,000-deep [[[…]]]', deep(100_000)],
    ['a valid completion with a 100,000-deep unknown field', `{"x":${deep(100_000)},${ok.slice(1)}`],
  ])('%s → SecurityError, not RangeError', async (_name, text) => {
    plaintext = text;
    const err = await clientFor(server, { maxRetries: 0 }).create(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toBe('the decrypted answer is not a chat.completion: nested deeper than 64');
  });

  it('the resealing itself works: a valid plaintext comes back', async () => {
    plaintext = ok;
    expect((await clientFor(server).create(hello)).choices[0]!.message.content).toBe('fine');
  });
});

describe('__proto__ in unchecked fields never sets a prototype, through createSecureFetch', () => {
  let server: NomyoServer;
  const hostile = withProto(
    JSON.stringify(valid({ role: 'assistant', content: 'hi', v: 1 }, { extra: 1, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, details: 1 } }))
      .replace('"extra":1', '"extra":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')
      .replace('"v":1', '"vendor":{"__proto__":{"polluted":true}}')
      .replace('"details":1', '"details":{"__proto__":{"polluted":true}}'),
  );
  beforeAll(async () => {
    server = await startTestServer({ model: () => hostile });
  });
  afterAll(() => server.close());

  const request = (stream: boolean) =>
    createSecureFetch({ routerUrl: server.url, allowHttp: true, keySize: 2048 })('https://router.invalid/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ ...hello, stream, stream_options: stream ? { include_usage: true } : undefined }),
    });

  it('as JSON: the field arrives as an own key, prototypes untouched', async () => {
    const json = (await (await request(false)).json()) as { extra: object; choices: Array<{ message: { vendor: object } }> };
    for (const o of [json, json.extra, json.choices[0]!.message.vendor]) expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.getOwnPropertyNames(json.extra)).toEqual(['__proto__', 'constructor']);
  });

  it('as an SSE stream', async () => {
    const events = (await (await request(true)).text()).split('\n\n').filter((e) => e.startsWith('data: {'));
    const usage = events.map((e) => JSON.parse(e.slice(6)) as { usage?: { details?: object } | null }).find((c) => c.usage)?.usage;
    expect(Object.getOwnPropertyNames(usage!.details)).toEqual(['__proto__']);
  });
});
