import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SecureChatCompletion, SecurityError } from '@nomyo/core';
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
