import { execFile } from 'node:child_process';
import { createServer as createTcpServer, connect, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { makeTestCertificates, type TestCertificates } from '@nomyo/test-support/tls';
import { startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/https-client.mjs', import.meta.url));

async function clientProcess(url: string, env: Record<string, string>, promptBytes?: number) {
  const args = [CLIENT, url, ...(promptBytes ? [String(promptBytes)] : [])];
  const { stdout } = await run(process.execPath, args, { env: { ...process.env, ...env, NODE_EXTRA_CA_CERTS: env.NODE_EXTRA_CA_CERTS ?? '' } });
  return JSON.parse(stdout) as { content?: string; whole?: boolean; length?: number; error?: string; code?: string; message?: string };
}

describe('over real HTTPS (a CA and certificate made by the test)', () => {
  let tls: TestCertificates;
  let server: NomyoServer;
  beforeAll(async () => {
    tls = makeTestCertificates();
    server = await startTestServer({ tls: { cert: tls.certPem, key: tls.keyPem } });
  });
  afterAll(async () => {
    await server.close();
    tls.cleanup();
  });

  it('completes with https and no allowHttp when the CA is trusted', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const result = await clientProcess(server.url, { NODE_EXTRA_CA_CERTS: tls.caFile });
    expect(result).toEqual({ content: 'echo: over TLS' });
  });

  it('sends a 6 MiB prompt and opens its answer: a large body goes through the TLS socket in pieces', async () => {
    const bytes = 6 * 1024 * 1024;
    const result = await clientProcess(server.url, { NODE_EXTRA_CA_CERTS: tls.caFile }, bytes);
    expect(result).toEqual({ whole: true, length: bytes + 'echo: '.length });
  });

  it('refuses an untrusted certificate with APIConnectionError, sending nothing', async () => {
    const before = server.stats.requests;
    const result = await clientProcess(server.url, {});
    expect(result.error).toBe('APIConnectionError');
    expect(result.code).toBe('ERR_NOMYO_CONNECTION');
    expect(result.message).toMatch(/CERT|certificate|SELF_SIGNED|UNABLE/i);
    expect(server.stats.requests).toBe(before);
  });

  it('a certificate refused is not retried: the same on every try', async () => {
    // A TCP relay in front of the router counts the connections the client opens.
    let connections = 0;
    const relay = createTcpServer((socket) => {
      connections++;
      const upstream = connect(Number(new URL(server.url).port), '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      for (const s of [socket, upstream]) s.on('error', () => (socket.destroy(), upstream.destroy()));
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const result = await clientProcess(`https://127.0.0.1:${(relay.address() as AddressInfo).port}`, { MAX_RETRIES: '2' });
      expect(result.error).toBe('APIConnectionError');
      expect(result.message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|CERT/);
      expect(connections).toBe(1);
    } finally {
      relay.close();
    }
  });

  it('refuses a certificate for another host name', async () => {
    const other = await startTestServer({ tls: { cert: tls.certPem, key: tls.keyPem }, host: '127.0.0.2' }).catch(() => undefined);
    if (!other) return expect.fail('could not bind 127.0.0.2');
    try {
      const result = await clientProcess(other.url, { NODE_EXTRA_CA_CERTS: tls.caFile });
      expect(result.error).toBe('APIConnectionError');
      expect(result.message).toMatch(/ALTNAME|altname|Hostname/i);
    } finally {
      await other.close();
    }
  });
});
