import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecureChatCompletion, SecureCompletionClient, SecurityError } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, hello, secureRequests, startTestServer, text } from './support.js';

describe('SecureChatCompletion against the reference server', () => {
  let server: NomyoServer;
  let seen: { request: Record<string, unknown>; tier: string | undefined }[] = [];
  beforeAll(async () => {
    server = await startTestServer({
      model: async (request, ctx) => {
        seen.push({ request, tier: ctx.securityTier });
        const { echoModel } = await import('@nomyo/server');
        return echoModel(request, ctx);
      },
    });
  });
  afterAll(() => server.close());

  // The reference server speaks both: `auto` (the default) picks v2, `protocol: 1` keeps v1.
  it.each([
    { protocol: 2, algorithm: 'aes256gcm-hkdf-sha256', options: {} },
    { protocol: 1, algorithm: 'hybrid-aes256-rsa4096', options: { protocol: 1 } as const },
  ])('sends an encrypted chat completion and returns the typed answer with _metadata (protocol $protocol)', async ({ protocol, algorithm, options }) => {
    const client = clientFor(server, options);
    const completion = await client.create(hello);
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]!.message.content).toBe('echo: Hello, secret world');
    const wire = secureRequests(server).at(-1)!;
    expect(completion._metadata).toEqual({
      payload_id: wire.headers['x-payload-id'],
      processed_at: expect.any(Number),
      is_encrypted: true,
      encryption_algorithm: algorithm,
      protocol,
    });
    expect(Math.abs(completion._metadata.processed_at! - Date.now() / 1000)).toBeLessThan(60);
  });

  it.each([
    { protocol: 2, version: '2.0', publicKey: undefined, options: {} },
    { protocol: 1, version: '1.0', publicKey: /^-----BEGIN PUBLIC KEY-----/, options: { protocol: 1 } as const },
  ])('puts nothing readable on the wire, in either direction (protocol $protocol)', async ({ version, publicKey, options }) => {
    server.clearRequests();
    await clientFor(server, options).chat.completions.create(hello);
    const [wire] = secureRequests(server);
    const body = JSON.parse(text(wire!.body));
    expect(body.version).toBe(version);
    expect(JSON.parse(text(wire!.response!.body)).version).toBe(version);
    expect(Object.keys(body.encrypted_payload).sort()).toEqual(['ciphertext', 'nonce', 'tag']);
    expect(text(wire!.body)).not.toContain('secret');
    expect(text(wire!.response!.body)).not.toContain('secret');
    expect(wire!.headers['content-type']).toBe('application/octet-stream');
    // v2 sends no X-Public-Key: nothing on the wire identifies the client across requests.
    if (publicKey) expect(decodeURIComponent(String(wire!.headers['x-public-key']))).toMatch(publicKey);
    else expect(wire!.headers).not.toHaveProperty('x-public-key');
  });

  it('sends security_tier only as the X-Security-Tier header, never inside the payload', async () => {
    seen = [];
    server.clearRequests();
    await clientFor(server).create({ ...hello, security_tier: 'maximum' });
    expect(secureRequests(server)[0]!.headers['x-security-tier']).toBe('maximum');
    expect(seen[0]!.tier).toBe('maximum');
    expect(seen[0]!.request).not.toHaveProperty('security_tier');
    expect(seen[0]!.request).toEqual(hello);
  });

  it('sends the API key as a Bearer header only when one is set', async () => {
    server.clearRequests();
    await clientFor(server, { apiKey: 'sk-test-123' }).create(hello);
    await clientFor(server, { apiKey: 'sk-client' }).create(hello, { apiKey: 'sk-per-call' });
    await clientFor(server).create(hello);
    const auth = secureRequests(server).map((r) => r.headers.authorization);
    expect(auth).toEqual(['Bearer sk-test-123', 'Bearer sk-per-call', undefined]);
  });

  it('passes tools through and returns tool calls', async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
    const completion = await clientFor(server).create({ model: 'm', messages: [{ role: 'user', content: 'call: aspirin dose' }], tools });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls![0]!.function).toEqual({ name: 'lookup', arguments: JSON.stringify({ input: 'aspirin dose' }) });
  });

  it('round-trips a 5 MiB request', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024);
    const completion = await clientFor(server).create({ model: 'm', messages: [{ role: 'user', content: big }] });
    expect(completion.choices[0]!.message.content).toBe(`echo: ${big}`);
  });

  it('makes one key pair for 20 concurrent first calls, and fetches the server key once for all of them (v1)', async () => {
    const fetchesBefore = server.stats.publicKeyFetches;
    server.clearRequests();
    const client = clientFor(server, { protocol: 1 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.create({ model: 'm', messages: [{ role: 'user', content: `n${i}` }] })));
    expect(answers.map((a) => a.choices[0]!.message.content)).toEqual(Array.from({ length: 20 }, (_, i) => `echo: n${i}`));
    const keys = new Set(secureRequests(server).map((r) => r.headers['x-public-key']));
    expect(keys.size).toBe(1);
    expect(server.stats.publicKeyFetches - fetchesBefore).toBe(1);
    const ids = new Set(answers.map((a) => a._metadata.payload_id));
    expect(ids.size).toBe(20);
  });

  it('generates an RSA-4096 client key by default (for v1)', async () => {
    const client = new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, protocol: 1 });
    await client.create(hello);
    const pair = await client.client.keyPair();
    expect(pair.bits).toBe(4096);
    expect(pair.privateKey.extractable).toBe(false);
  });

  it('exposes the low-level client: fetchServerPublicKey, encryptPayload, decryptResponse', async () => {
    const client = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true, keySize: 2048 });
    const key = await client.fetchServerPublicKey();
    expect(key.fingerprint).toBe(server.fingerprint);
    expect(key.bits).toBe(4096);
    const pkg = await client.encryptPayload(hello);
    expect(pkg.algorithm).toBe('hybrid-aes256-rsa4096');
    await expect(client.decryptResponse(pkg, 'x')).rejects.toBeInstanceOf(SecurityError);
    const answer = await client.sendSecureRequest(hello, 'my-payload-id');
    expect(answer._metadata.payload_id).toBe('my-payload-id');
  });

  it('writes nothing to the console, and sends the allowHttp warning to onWarning', async () => {
    const writes: string[] = [];
    const original = { log: console.log, warn: console.warn, error: console.error, info: console.info, debug: console.debug, out: process.stdout.write, err: process.stderr.write };
    const capture = (...args: unknown[]) => void writes.push(args.map(String).join(' '));
    Object.assign(console, { log: capture, warn: capture, error: capture, info: capture, debug: capture });
    process.stdout.write = ((chunk: unknown) => (capture(chunk), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown) => (capture(chunk), true)) as typeof process.stderr.write;
    const warnings: string[] = [];
    try {
      const client = clientFor(server, { onWarning: (w) => warnings.push(w) });
      await client.create(hello);
      await client.create({ ...hello, security_tier: 'nope' as never }).catch(() => undefined);
    } finally {
      Object.assign(console, { log: original.log, warn: original.warn, error: original.error, info: original.info, debug: original.debug });
      process.stdout.write = original.out;
      process.stderr.write = original.err;
    }
    expect(writes).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/plain HTTP/);
  });
});
