import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidRequestError, SecureChatCompletion, SecurityError } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, hello, startTestServer } from './support.js';

/** Each case must be refused before a single byte reaches the router. */
describe('refused before anything is sent', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  const nothingSent = () => expect(server.stats.requests).toBe(0);

  it('an http: URL without allowHttp, in any letter case', () => {
    for (const url of [server.url, server.url.replace('http:', 'HTTP:'), server.url.replace('http:', 'hTtP:')]) {
      expect(() => new SecureChatCompletion({ baseUrl: url })).toThrow(SecurityError);
    }
    nothingSent();
  });

  it('a URL of any other scheme, even with allowHttp', () => {
    for (const url of ['ftp://127.0.0.1/', 'file:///tmp/x', 'ws://127.0.0.1:1/']) {
      expect(() => new SecureChatCompletion({ baseUrl: url, allowHttp: true })).toThrow(SecurityError);
    }
  });

  it('an API key with CR, LF or another control character', async () => {
    for (const key of ['sk\r\nX-Evil: 1', 'sk\n', 'sk\x00', 'sk\t1', 'sk\x1b']) {
      expect(() => clientFor(server, { apiKey: key })).toThrow(InvalidArgumentError);
      await expect(clientFor(server).create(hello, { apiKey: key })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    nothingSent();
  });

  it('an unknown security tier', async () => {
    await expect(clientFor(server).create({ ...hello, security_tier: 'ultra' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    nothingSent();
  });

  it('a serialized payload over 10 MiB (and one exactly at the limit is sent)', async () => {
    const overhead = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: '' }] }).length;
    const atLimit = 'x'.repeat(10 * 1024 * 1024 - overhead);
    const client = clientFor(server);
    await expect(client.create({ model: 'm', messages: [{ role: 'user', content: atLimit + 'x' }] })).rejects.toBeInstanceOf(InvalidArgumentError);
    // Multi-byte characters count as their UTF-8 bytes.
    await expect(client.create({ model: 'm', messages: [{ role: 'user', content: 'é'.repeat(6 * 1024 * 1024) }] })).rejects.toThrow(/exceeds 10485760 bytes/);
    nothingSent();
    const ok = await client.create({ model: 'm', messages: [{ role: 'user', content: atLimit }] });
    expect(ok.choices[0]!.message.content).toHaveLength(atLimit.length + 6);
  });
});

/**
 * A v2 request the router opens but refuses (no model, `tools` not an array): the reason says what the
 * request holds, so it comes sealed for the client alone, as an upstream's does. The client raises
 * it as the sealed InvalidRequestError it is, and does not take it for a key the router no longer
 * holds: one request, no key fetched again.
 */
describe('refused once opened (v2)', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it.each([
    ['tools not an array', { ...hello, tools: {} }, 'tools must be an array'],
    ['an empty model', { ...hello, model: '' }, 'the request needs a model string'],
  ])('%s: a sealed InvalidRequestError with the reason, which went by in the clear nowhere', async (_what, payload, reason) => {
    const client = clientFor(server, { protocol: 2 });
    await client.create(hello); // the router's key, fetched and cached
    server.clearRequests();
    const err = await client.create(payload as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ status: 400, sealed: true, detail: reason });
    const secure = server.requests.filter((r) => r.path === '/v1/chat/secure_completion');
    expect(secure).toHaveLength(1);
    expect(JSON.stringify(secure[0]!.response)).not.toContain(reason);
    expect(server.requests.filter((r) => r.path === '/pki/public_key')).toHaveLength(0);
    await client.dispose();
  });
});
