/**
 * An OpenAI-compatible upstream repeats the request in its errors: vLLM names the model that does not
 * exist, a context-length error quotes the prompt. The router must never send that text in the clear:
 * a TLS-terminating proxy in front of it (a real HTTP proxy on loopback, which records everything)
 * would read it. A v2 client gets the real reason sealed with its request's answer key; a v1 client
 * (and anything on the way) a generic detail with the status class only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { APIError, createSecureFetch, InvalidRequestError, RateLimitError, SecurityError } from '@nomyo/core';
import { SEALED_ERROR_FIELD } from '@nomyo/core/protocol';
import type { NomyoServer } from '@nomyo/server';
import { startProxy, type ProxiedAnswer, type Proxy } from './proxy.js';
import { clientFor, startTestServer } from './support.js';

/** What must never be readable on the way: a sealed model name and a fragment of a sealed prompt. */
const SECRET_MODEL = 'acme-takeover-of-globex';
const SECRET_PROMPT = 'Project Globex: offer 4.2 billion, walk away at 5';

const SCHEMA_ERROR = `Invalid schema for response_format 'answer': In context=('properties', 'steps', 'items'), 'required' is required to be supplied and to be an array including every key in properties. ${'Extra detail on the schema. '.repeat(10)}Missing 'n'.`;

let upstream: http.Server;
let router: NomyoServer;
let proxy: Proxy;
/** Every answer that crossed the proxy, as it saw it: status line, headers and body. */
let seen: string[] = [];

/** A vLLM-like upstream: 404 for an unknown model, 400 quoting the prompt when it is too long, 429 for "busy". */
function answerLikeVllm(res: http.ServerResponse, request: { model: string; messages: Array<{ content: string }> }): void {
  const prompt = request.messages.at(-1)!.content;
  const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  if (request.model === SECRET_MODEL) return send(404, { object: 'error', message: `The model \`${request.model}\` does not exist.`, type: 'NotFoundError', param: null, code: 404 });
  // An error whose message quotes a long input, as some servers' do: 100 KB of JSON.
  if (prompt.startsWith('long')) return send(400, { error: { message: `Input too long: ${'x'.repeat(100_000)}`, type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } });
  // A schema error as OpenAI words one: what to fix comes at the end of some 400 characters.
  if (prompt.startsWith('schema')) return send(400, { error: { message: SCHEMA_ERROR, type: 'invalid_request_error', param: 'response_format', code: null } });
  if (prompt.startsWith('busy')) return send(429, { error: { message: `Rate limit reached for ${request.model}`, type: 'rate_limit_error', code: 'rate_limited' } }, { 'Retry-After': '1' });
  if (prompt.length > 20) {
    return send(400, { error: { message: `This model's maximum context length is 8 tokens. However, your prompt "${prompt.slice(0, 60)}" has 12.`, type: 'BadRequestError', code: 400 } });
  }
  return send(200, { id: 'up', object: 'chat.completion', created: 1, model: request.model, choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] });
}

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answerLikeVllm(res, JSON.parse(Buffer.concat(chunks).toString('utf8'))));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  router = await startTestServer({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1` });
  proxy = await startProxy(router.url);
});
afterAll(async () => {
  await proxy.close();
  await router.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});
beforeEach(() => {
  seen = [];
  proxy.hooks = { answer: (answer) => void seen.push(`${answer.status} ${JSON.stringify(answer.headers)} ${answer.body.toString('latin1')}`) };
});

const viaProxy = (protocol: 'auto' | 1) => clientFor({ url: proxy.url } as NomyoServer, { protocol, maxRetries: 0 });
const ask = (model: string, content: string) => ({ model, messages: [{ role: 'user', content }] });

/** Nothing the proxy saw holds the secrets, in any form a TLS-terminating proxy reads. */
function expectNothingReadable(): void {
  const all = seen.join('\n');
  expect(seen.length).toBeGreaterThan(0);
  for (const secret of [SECRET_MODEL, SECRET_PROMPT.slice(0, 20), 'Globex', 'does not exist', 'context length']) expect(all).not.toContain(secret);
}

describe('upstream errors that repeat the request', () => {
  it('v2: the real reason comes sealed, typed by the upstream’s status; the proxy reads a generic 400', async () => {
    const err = (await viaProxy('auto').create(ask(SECRET_MODEL, 'hi')).catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(APIError);
    expect(err).not.toBeInstanceOf(InvalidRequestError);
    expect(err.status).toBe(404);
    expect(err.detail).toBe(`The model \`${SECRET_MODEL}\` does not exist.`);
    expectNothingReadable();
    const clear = seen.find((line) => line.startsWith('400 '))!;
    expect(clear).toContain('the inference backend refused the request (4xx)');
    expect(clear).toContain(SEALED_ERROR_FIELD);

    seen = [];
    const quoted = (await viaProxy('auto').create(ask('m', SECRET_PROMPT)).catch((e: unknown) => e)) as APIError;
    expect(quoted).toBeInstanceOf(InvalidRequestError);
    expect(quoted.detail).toContain(SECRET_PROMPT.slice(0, 20));
    expectNothingReadable();
  });

  it('v2: an error body of 100 KB (a message quoting the input) keeps its type, code and param', async () => {
    const err = (await viaProxy('auto').create(ask('m', 'long input')).catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' });
    expect(err.detail).toMatch(/^Input too long: x+…$/);
    expect(err.detail).toHaveLength(2000);
  });

  it('v2: a sealed message keeps what to fix at the end of a few hundred characters', async () => {
    const err = (await viaProxy('auto').create(ask('m', 'schema check')).catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.detail).toBe(SCHEMA_ERROR);
    expect(err.error).toMatchObject({ message: SCHEMA_ERROR, param: 'response_format' });
  });

  it('v2: a 429 stays a 429 with its Retry-After, its message sealed', async () => {
    const err = (await viaProxy('auto').create(ask(SECRET_MODEL.replace('acme', 'busy'), 'busy now')).catch((e: unknown) => e)) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.retryAfter).toBe(1);
    expect(err.detail).toContain('Rate limit reached for busy-takeover-of-globex');
    expect(seen.join('\n')).not.toContain('takeover');
  });

  it('v1: a generic detail with the status class only (v1 cannot seal it: its key travels in the clear)', async () => {
    const err = (await viaProxy(1).create(ask(SECRET_MODEL, 'hi')).catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.detail).toBe('the inference backend refused the request (4xx)');
    expectNothingReadable();
  });

  it('the OpenAI SDK through createSecureFetch raises its own error class with the real message', async () => {
    const openai = new OpenAI({ baseURL: 'https://router.invalid/v1', apiKey: 'sk-x', maxRetries: 0, fetch: createSecureFetch({ routerUrl: proxy.url, allowHttp: true }) });
    const err = await openai.chat.completions.create({ model: SECRET_MODEL, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as Error).message).toContain(`The model \`${SECRET_MODEL}\` does not exist.`);
    expectNothingReadable();
    // The upstream's type, code and param, as the SDK would have had them from it directly.
    const long = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'long input' }] }).catch((e: unknown) => e);
    expect(long).toBeInstanceOf(OpenAI.BadRequestError);
    expect(long).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' });
  });

  it.each([
    ['changes a byte of the sealed error', (answer: ProxiedAnswer) => {
      const body = JSON.parse(answer.body.toString()) as Record<string, { encrypted_payload: { tag: string } }>;
      body[SEALED_ERROR_FIELD]!.encrypted_payload.tag = Buffer.alloc(16, 1).toString('base64');
      answer.body = Buffer.from(JSON.stringify(body));
    }],
    ['hands it another request’s sealed error', (answer: ProxiedAnswer) => {
      answer.body = Buffer.from(JSON.stringify({ detail: 'x', [SEALED_ERROR_FIELD]: previous }));
    }],
  ])('a proxy that %s gets a SecurityError, never a different message', async (_what, edit) => {
    const first = (await viaProxy('auto').create(ask(SECRET_MODEL, 'hi')).catch((e: unknown) => e)) as APIError;
    expect(first.status).toBe(404);
    proxy.hooks = { answer: (answer) => void (answer.status === 400 ? edit(answer) : undefined) };
    const err = await viaProxy('auto').create(ask(SECRET_MODEL, 'hi')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(/sealed error that is not authentic/);
  });
});

/** The last sealed error the proxy passed on, for the replay case. */
let previous: unknown;
beforeEach(() => {
  const record = proxy.hooks.answer!;
  proxy.hooks = {
    answer: (answer, request) => {
      if (answer.status === 400) previous = (JSON.parse(answer.body.toString()) as Record<string, unknown>)[SEALED_ERROR_FIELD];
      return record(answer, request);
    },
  };
});
