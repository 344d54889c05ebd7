/** HTTPS with a throwaway CA (@nomyo/test-support): node:https with `ca`, and fetch with NODE_EXTRA_CA_CERTS. */
import { execFile } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS } from '@nomyo/core/protocol';
import { startServer, type NomyoServer } from '../src/index.js';
import { makeTestCertificates, type TestCertificates } from '@nomyo/test-support/tls';
import { VECTOR_KEY_FILE } from './helpers.js';

let tls: TestCertificates;
let server: NomyoServer;
beforeAll(async () => {
  tls = makeTestCertificates();
  server = await startServer({ keyFile: VECTOR_KEY_FILE, tls: { cert: tls.certPem, key: tls.keyPem } });
});
afterAll(async () => {
  await server?.close();
  tls?.cleanup();
});

function httpsGet(url: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS', () => {
  it('serves over TLS to a client that trusts the test CA', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpsGet(server.url + PATHS.publicKey, tls.caPem);
    expect(res.status).toBe(200);
    expect(res.body).toBe(server.publicKeyPem);
    // localhost is in the certificate too.
    const byName = await httpsGet(server.url.replace('127.0.0.1', 'localhost') + PATHS.publicKey, tls.caPem);
    expect(byName.status).toBe(200);
  });

  it('is refused by a client that does not trust the CA', async () => {
    await expect(httpsGet(server.url + PATHS.publicKey)).rejects.toThrow(/self[- ]signed|unable to (verify|get)/i);
  });

  it('takes its key as bytes, which the caller may zero once listening: later connections still get the certificate', async () => {
    const key = Buffer.from(tls.keyPem);
    const byBytes = await startServer({ keyFile: VECTOR_KEY_FILE, tls: { cert: tls.certPem, key } });
    try {
      key.fill(0);
      for (let i = 0; i < 2; i++) expect((await httpsGet(byBytes.url + PATHS.publicKey, tls.caPem)).status).toBe(200);
    } finally {
      await byBytes.close();
    }
    expect(() => startServer({ tls: { cert: tls.certPem, key: 42 as unknown as string } })).toThrow('tls needs a cert PEM string and a key PEM string or bytes');
  });

  it('works with global fetch when NODE_EXTRA_CA_CERTS names the CA', async () => {
    const script = `const r = await fetch(${JSON.stringify(server.url + PATHS.publicKey)}); process.stdout.write(String(r.status));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile },
    });
    expect(stdout).toBe('200');
  });

  it('the headers timeout bounds the TLS handshake: a connection that sends nothing is closed after it', async () => {
    const bounded = await startServer({ keyFile: VECTOR_KEY_FILE, tls: { cert: tls.certPem, key: tls.keyPem }, headersTimeoutMs: 300, requestTimeoutMs: 1000 });
    try {
      const socket = net.connect(bounded.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('connect', resolve));
      const t0 = performance.now();
      // Node's own handshake timeout is 120 s: bounded here, so the test does not wait for it.
      const closedAfter = await Promise.race([new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - t0))), new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), 5000))]);
      socket.destroy();
      expect(closedAfter).toBeGreaterThanOrEqual(250);
      expect(closedAfter).toBeLessThan(2000);
    } finally {
      await bounded.close();
    }
  });
});
