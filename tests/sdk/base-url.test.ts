/**
 * createSecureFetch takes the router as `baseUrl` (SecureChatCompletion's name) as well as
 * `routerUrl`, and really sends there; misspelt options are refused before anything is sent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import type { NomyoServer } from '@nomyo/server';
import { createSecureFetch, InvalidArgumentError, SecureChatCompletion } from '@nomyo/core';
import { completionRequests, expectSealed, KEY_SIZE, PLACEHOLDER_BASE_URL, startRouter } from './helpers.js';

const SECRET = 'my base-url secret';
const messages = [{ role: 'user' as const, content: SECRET }];

let wanted: NomyoServer;
// Where the client goes when it finds no router option: NOMYO_SERVER_URL points here.
let fallback: NomyoServer;
let envBefore: string | undefined;

beforeAll(async () => {
  [wanted, fallback] = await Promise.all([startRouter(), startRouter()]);
  envBefore = process.env.NOMYO_SERVER_URL;
  process.env.NOMYO_SERVER_URL = fallback.url;
});
afterAll(async () => {
  if (envBefore === undefined) delete process.env.NOMYO_SERVER_URL;
  else process.env.NOMYO_SERVER_URL = envBefore;
  await Promise.all([wanted?.close(), fallback?.close()]);
});
beforeEach(() => {
  wanted.clearRequests();
  fallback.clearRequests();
});

describe('createSecureFetch({ baseUrl })', () => {
  it('sends to baseUrl, not to the default router', async () => {
    const secureFetch = createSecureFetch({ baseUrl: wanted.url, allowHttp: true, keySize: KEY_SIZE });
    const openai = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: 'sk-base-url', fetch: secureFetch });
    const completion = await openai.chat.completions.create({ model: 'echo', messages });
    expect(completion.choices[0]?.message.content).toBe(`echo: ${SECRET}`);

    const [request, ...more] = completionRequests(wanted);
    expect(more).toHaveLength(0);
    expect(request?.headers.authorization).toBe('Bearer sk-base-url');
    expectSealed(request!.body, [SECRET]);
    expect(fallback.requests).toHaveLength(0);
    await secureFetch.client.dispose();
  });

  it('takes baseUrl and routerUrl together when they agree', async () => {
    const secureFetch = createSecureFetch({ baseUrl: wanted.url, routerUrl: wanted.url, allowHttp: true, keySize: KEY_SIZE });
    const openai = new OpenAI({ baseURL: PLACEHOLDER_BASE_URL, apiKey: 'k', fetch: secureFetch });
    await openai.chat.completions.create({ model: 'echo', messages });
    expect(completionRequests(wanted)).toHaveLength(1);
    expect(fallback.requests).toHaveLength(0);
    await secureFetch.client.dispose();
  });

  it('refuses the OpenAI spelling, conflicting routers and misspelt pins before anything is sent', () => {
    const refusals: Array<[() => unknown, string]> = [
      [() => createSecureFetch({ baseURL: wanted.url, allowHttp: true } as never), 'createSecureFetch options: unknown option baseURL; did you mean baseUrl?'],
      [
        () => createSecureFetch({ baseUrl: wanted.url, routerUrl: fallback.url, allowHttp: true }),
        'createSecureFetch options: baseUrl and routerUrl both name the router but differ; give one',
      ],
      [
        () => createSecureFetch({ baseUrl: wanted.url, allowHttp: true, serverKeyFingerPrint: 'ab'.repeat(32) } as never),
        'createSecureFetch options: unknown option serverKeyFingerPrint; did you mean serverKeyFingerprint?',
      ],
      [
        () => new SecureChatCompletion({ baseUrl: wanted.url, allowHttp: true, serverKeyFingerPrint: 'ab'.repeat(32) } as never),
        'SecureChatCompletion options: unknown option serverKeyFingerPrint; did you mean serverKeyFingerprint?',
      ],
    ];
    for (const [call, message] of refusals) {
      let error: unknown;
      try {
        call();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toBe(message);
    }
    expect(wanted.requests).toHaveLength(0);
    expect(fallback.requests).toHaveLength(0);
  });
});
