import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APIError,
  AuthenticationError,
  ForbiddenError,
  InvalidRequestError,
  RateLimitError,
  ServerError,
  ServiceUnavailableError,
  type NomyoError,
} from '@nomyo/core';
import { UpstreamError, type InterceptAction, type NomyoServer } from '@nomyo/server';
import { clientFor, hello, secureRequests, startTestServer } from './support.js';

describe('router errors become typed errors', () => {
  let server: NomyoServer;
  let answer: InterceptAction | undefined;
  beforeAll(async () => {
    server = await startTestServer({ interceptor: (req) => (req.path === '/v1/chat/secure_completion' ? answer : undefined) });
  });
  beforeEach(() => server.clearRequests());
  afterAll(() => server.close());

  const fail = async (action: InterceptAction) => {
    answer = action;
    try {
      return (await clientFor(server, { maxRetries: 0 }).create(hello).catch((e: unknown) => e)) as NomyoError;
    } finally {
      answer = undefined;
    }
  };

  it.each([
    [400, InvalidRequestError, 'ERR_NOMYO_INVALID_REQUEST'],
    [401, AuthenticationError, 'ERR_NOMYO_AUTHENTICATION'],
    [403, ForbiddenError, 'ERR_NOMYO_FORBIDDEN'],
    [404, APIError, 'ERR_NOMYO_API'],
    [418, APIError, 'ERR_NOMYO_API'],
    [429, RateLimitError, 'ERR_NOMYO_RATE_LIMIT'],
    [500, ServerError, 'ERR_NOMYO_SERVER'],
    [502, APIError, 'ERR_NOMYO_API'],
    [503, ServiceUnavailableError, 'ERR_NOMYO_SERVICE_UNAVAILABLE'],
  ] as const)('%i → %O', async (status, cls, code) => {
    const err = (await fail({ status, body: { detail: `router says ${status}` }, headers: { 'x-request-id': 'req-1' } })) as APIError;
    expect(err).toBeInstanceOf(cls);
    expect(err.constructor).toBe(cls);
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    expect(err.detail).toBe(`router says ${status}`);
    expect(err.requestId).toBe('req-1');
    expect(err.headers.get('x-request-id')).toBe('req-1');
  });

  it('a 429 and a 503 carry retryAfter, for a caller that waits itself (maxRetries: 0)', async () => {
    const err = (await fail({ status: 429, headers: { 'Retry-After': '7' } })) as RateLimitError;
    expect(err.retryAfter).toBe(7);
    const busy = (await fail({ status: 503, headers: { 'Retry-After': '1' } })) as ServiceUnavailableError;
    expect(busy).toBeInstanceOf(ServiceUnavailableError);
    expect(busy.retryAfter).toBe(1);
    expect(((await fail({ status: 503 })) as ServiceUnavailableError).retryAfter).toBeUndefined();
  });

  it('a real 401 from a router with an API key', async () => {
    const guarded = await startTestServer({ apiKey: 'right-key' });
    try {
      const err = await clientFor(guarded, { apiKey: 'wrong-key' }).create(hello).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthenticationError);
      await expect(clientFor(guarded, { apiKey: 'right-key' }).create(hello)).resolves.toBeTruthy();
    } finally {
      await guarded.close();
    }
  });

  it("without an x-request-id, requestId is the payload id the request was sent with (the router logs it as payload_id): a 401, an error sealed for the request, a stream's final record", async () => {
    const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }] };
    const refusal = () => new UpstreamError(400, 'the inference backend refused the request (4xx)', { message: 'no such model', type: 'invalid_request_error', code: null, status: 400 });
    const guarded = await startTestServer({ apiKey: 'right-key' });
    const refusing = await startTestServer({
      model: (request) => {
        if (request.stream !== true) throw refusal();
        return (async function* () {
          yield chunk;
          throw refusal();
        })();
      },
    });
    try {
      const low = (router: NomyoServer) => clientFor(router, { maxRetries: 0, protocol: 2 }).client;
      const unauthorized = (await low(guarded).sendSecureRequest(hello, 'id-401', { apiKey: 'wrong-key' }).catch((e: unknown) => e)) as APIError;
      expect(unauthorized).toBeInstanceOf(AuthenticationError);
      expect([unauthorized.payloadId, unauthorized.requestId]).toEqual(['id-401', 'id-401']);
      const sealed = (await low(refusing).sendSecureRequest(hello, 'id-sealed').catch((e: unknown) => e)) as APIError;
      expect(sealed).toMatchObject({ status: 400, sealed: true, payloadId: 'id-sealed', requestId: 'id-sealed' });
      const stream = await low(refusing).streamSecureRequest(hello, 'id-stream');
      const ended = await (async () => {
        for await (const _ of stream);
      })().catch((e: unknown) => e);
      expect(ended).toMatchObject({ status: 400, sealed: true, payloadId: 'id-stream', requestId: 'id-stream' });
    } finally {
      await Promise.all([guarded.close(), refusing.close()]);
    }
  });

  it('a hostile detail never reaches the caller raw', async () => {
    const hostile = '\x1b[2J\x1b]0;owned\x07\u202eevil\x00' + 'A'.repeat(500) + '\r\nX-Injected: 1';
    const err = (await fail({ status: 403, body: { detail: hostile } })) as APIError;
    expect(err.detail).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e]/);
    expect(Array.from(err.detail!).length).toBeLessThanOrEqual(100);
    expect(err.message).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect(err.detail!.startsWith('evilAAAA')).toBe(true);
  });

  it('a body that is not JSON still gives the status and a sanitized detail', async () => {
    const err = (await fail({ status: 502, body: '<html>\x1b[31mBad Gateway</html>' })) as APIError;
    expect(err.status).toBe(502);
    expect(err.detail).toBe('<html>Bad Gateway</html>');
  });

  it('never retries a 4xx other than 429 (one attempt each)', async () => {
    for (const status of [401, 403, 404, 418]) {
      server.clearRequests();
      answer = { status };
      await clientFor(server, { maxRetries: 3 }).create(hello).catch(() => undefined);
      answer = undefined;
      expect(secureRequests(server)).toHaveLength(1);
    }
  });

  it('a 400 makes the client fetch the router key again, and retries only if the key changed', async () => {
    const fetches = server.stats.publicKeyFetches;
    answer = { status: 400, body: { detail: 'could not decrypt' } };
    const err = await clientFor(server, { maxRetries: 3 }).create(hello).catch((e: unknown) => e);
    answer = undefined;
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(secureRequests(server)).toHaveLength(1);
    expect(server.stats.publicKeyFetches - fetches).toBe(2);
  });
});

describe('a router whose key changed', () => {
  it('answers 400; the client fetches the new key once, says so through onWarning with both fingerprints, and the retried request succeeds', async () => {
    const server = await startTestServer();
    try {
      const warnings: string[] = [];
      const client = clientFor(server, { onWarning: (w) => warnings.push(w) });
      await client.create(hello);
      const before = server.fingerprint;
      await server.rotateKey();
      server.clearRequests();
      warnings.length = 0; // allowHttp's
      const answer = await client.create(hello);
      expect(answer.choices[0]!.message.content).toBe('echo: Hello, secret world');
      expect(secureRequests(server).map((r) => r.response!.status)).toEqual([400, 200]);
      expect(server.stats.publicKeyFetches).toBe(2);
      // A substituted key looks the same as a rotation: the caller is told, with the remedy.
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(before);
      expect(warnings[0]).toContain(server.fingerprint);
      expect(warnings[0]).toMatch(/serverKeyFingerprint/);
      expect(warnings[0]).toMatch(/keyDir/);
    } finally {
      await server.close();
    }
  });

  it('a key fetch that fails on the way to the new key is retried as an attempt: the call still gets through', async () => {
    let failKey = false;
    const server = await startTestServer({
      interceptor: (req) => {
        if (req.path !== '/pki/public_key' || !failKey) return undefined;
        failKey = false;
        return { status: 503, headers: { 'Retry-After': '0.01' } };
      },
    });
    try {
      const client = clientFor(server, { maxRetries: 2 });
      await client.create(hello);
      await server.rotateKey();
      failKey = true; // the refresh after the 400 meets a 503 once
      const answer = await client.create(hello);
      expect(answer.choices[0]!.message.content).toBe('echo: Hello, secret world');
    } finally {
      await server.close();
    }
  });

  it('concurrent calls sealed to the old key all get through: one that finds the new key already fetched retries with it', async () => {
    const server = await startTestServer();
    try {
      // The first request goes at once; the others reach the router once it has answered it and the
      // client has fetched the new key (as on a slower network).
      let posts = 0;
      const fetch = async (input: string, init: RequestInit) => {
        if (init.method === 'POST' && posts++ > 0 && posts <= 10) await new Promise((resolve) => setTimeout(resolve, 400));
        return globalThis.fetch(input, init);
      };
      const client = clientFor(server, { fetch });
      await client.client.fetchServerPublicKey();
      await server.rotateKey();
      const answers = await Promise.allSettled(Array.from({ length: 9 }, () => client.create(hello)));
      expect(answers.map((a) => a.status)).toEqual(Array(9).fill('fulfilled'));
      expect(server.stats.publicKeyFetches).toBe(2);
    } finally {
      await server.close();
    }
  });
});
