/**
 * SecureCompletionClient on its own: its flow (the router's key and version, a sealed body, the POST,
 * the answer opened, its `_metadata`), its retries, its key refresh after a 400 and what it sends,
 * against a peer written here on node:http with core's own protocol functions (the reference router
 * is another package: tests/ runs the two together).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SecureCompletionClient } from '../../src/client/secure-completion-client.js';
import { APIUserAbortError, InvalidArgumentError, InvalidRequestError, ServiceUnavailableError } from '../../src/errors.js';
import { importRsaPrivateKey } from '../../src/crypto/rsa.js';
import { pemToDer } from '../../src/crypto/pem.js';
import { HEADERS, SEALED_ERROR_FIELD } from '../../src/protocol/constants.js';
import { serializePackage, sealWith } from '../../src/protocol/package.js';
import { sealedErrorBytes } from '../../src/protocol/sealed-error.js';
import { answerSealingV2, errorSealingV2, openRequestV2 } from '../../src/protocol/v2.js';
import { readVectorText } from '../helpers/vectors.js';

const PEM = readVectorText('v1/keys/server_4096.pub.pem');
const COMPLETION = { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] };

interface Seen {
  headers: IncomingMessage['headers'];
  body: string;
}
let privateKey: CryptoKey;
let server: Server;
let url: string;
let seen: Seen[] = [];
let keyFetches = 0;
/** How the peer answers the n-th POST (0-based); default: opens it and answers the completion, v2. */
let script: (n: number, req: Seen, res: ServerResponse) => Promise<boolean> = async () => false;

async function answerV2(req: Seen, res: ServerResponse, error?: { status: number }) {
  const payloadId = String(req.headers['x-payload-id']);
  const tier = req.headers['x-security-tier'] as string | undefined;
  const { answerKey, plaintext } = await openRequestV2(JSON.parse(req.body), privateKey, { payloadId, tier });
  plaintext.fill(0);
  if (error) {
    const sealed = await sealWith(errorSealingV2(answerKey, payloadId), sealedErrorBytes({ message: 'sealed reason', type: 'invalid_request_error', code: 'context_length\x1b[31m_exceeded\u202e', status: error.status }));
    res.writeHead(error.status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ detail: 'generic', [SEALED_ERROR_FIELD]: sealed }));
    return;
  }
  const answer = await sealWith(answerSealingV2(answerKey, payloadId, { processed_at: 7 }), new TextEncoder().encode(JSON.stringify(COMPLETION)));
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(serializePackage(answer));
}

beforeAll(async () => {
  privateKey = await importRsaPrivateKey(pemToDer(readVectorText('v1/keys/server_4096.pem'), 'PRIVATE KEY'), false);
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method === 'GET') {
          keyFetches++;
          res.writeHead(200, { 'Content-Type': 'text/plain', [HEADERS.protocol]: '1, 2' }).end(PEM);
          return;
        }
        const request = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        seen.push(request);
        if (!(await script(seen.length - 1, request, res))) await answerV2(request, res);
      })().catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  seen = [];
  keyFetches = 0;
  script = async () => false;
});

const client = (options = {}) => new SecureCompletionClient({ routerUrl: url, allowHttp: true, ...options });
const hello = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };

describe('SecureCompletionClient.sendSecureRequest', () => {
  it('v2: sends the headers that bind the request (and no X-Public-Key), opens the answer, adds _metadata', async () => {
    const answer = await client().sendSecureRequest(hello, 'pid-1', { apiKey: 'sk-1', securityTier: 'high' });
    expect(answer).toMatchObject({ ...COMPLETION, _metadata: { payload_id: 'pid-1', processed_at: 7, is_encrypted: true, protocol: 2, encryption_algorithm: 'aes256gcm-hkdf-sha256' } });
    const [request] = seen;
    expect(request!.headers).toMatchObject({ 'x-payload-id': 'pid-1', 'x-security-tier': 'high', authorization: 'Bearer sk-1', 'content-type': 'application/octet-stream' });
    expect(request!.headers['x-public-key']).toBeUndefined();
    expect(JSON.parse(request!.body)).toMatchObject({ version: '2.0' });
    expect(keyFetches).toBe(1);
  });

  it('retries a 503 with a freshly sealed package', async () => {
    script = async (n, _req, res) => (n === 0 ? (res.writeHead(503, { 'Retry-After': '0.01' }).end('{"detail":"busy"}'), true) : false);
    await client().sendSecureRequest(hello);
    expect(seen).toHaveLength(2);
    expect(JSON.parse(seen[0]!.body).encrypted_payload.ciphertext).not.toBe(JSON.parse(seen[1]!.body).encrypted_payload.ciphertext);
  });

  it('gives up after maxRetries, with the last error', async () => {
    script = async (_n, _req, res) => (res.writeHead(503, { 'Retry-After': '0.01' }).end('{"detail":"busy"}'), true);
    await expect(client({ maxRetries: 1 }).sendSecureRequest(hello)).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(seen).toHaveLength(2);
  });

  it('after a plain 400 fetches the router key once more, and sends nothing again when it did not change', async () => {
    script = async (_n, _req, res) => (res.writeHead(400).end('{"detail":"could not open"}'), true);
    const err = await client().sendSecureRequest(hello).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ sealed: false, error: undefined, type: undefined });
    expect(seen).toHaveLength(1);
    expect(keyFetches).toBe(2);
  });

  it('a 400 sealed for this request is the router’s word: typed by its sealed status, and no key refresh', async () => {
    script = async (_n, req, res) => (await answerV2(req, res, { status: 400 }), true);
    const err = (await client().sendSecureRequest(hello).catch((e: unknown) => e)) as InvalidRequestError;
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ sealed: true, detail: 'sealed reason', type: 'invalid_request_error' });
    // The model server's type and code, as openai-node's err.error; text from the network, sanitized.
    expect(err.error).toEqual({ message: 'sealed reason', type: 'invalid_request_error', code: 'context_length_exceeded', param: null });
    expect(keyFetches).toBe(1);
  });

  it('v1 (protocol: 1): makes a key pair and sends it as X-Public-Key', async () => {
    script = async (_n, req, res) => {
      const { publicKeyHeader } = await v1.keyPair();
      expect(req.headers['x-public-key']).toBe(publicKeyHeader);
      res.writeHead(500).end('{"detail":"stop here"}');
      return true;
    };
    const v1 = client({ protocol: 1, keySize: 2048 });
    await expect(v1.sendSecureRequest(hello)).rejects.toMatchObject({ status: 500 });
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ version: '1.0' });
  });

  it('an abort ends the wait with APIUserAbortError', async () => {
    const controller = new AbortController();
    script = async () => (controller.abort(), new Promise<boolean>(() => {}));
    await expect(client().sendSecureRequest(hello, undefined, { signal: controller.signal })).rejects.toBeInstanceOf(APIUserAbortError);
  });

  it('refuses a payload that is not an object before anything is sent', async () => {
    await expect(client().sendSecureRequest([] as unknown as object)).rejects.toThrow('payload must be a JSON object');
    expect(keyFetches).toBe(0);
  });

  it('refuses a payload JSON cannot express (a cycle, a BigInt, nesting deeper than the stack) with an InvalidArgumentError, before anything is sent; a toJSON\'s own error is passed on', async () => {
    const cyclic: Record<string, unknown> = { model: 'm' };
    cyclic.self = cyclic;
    let deep: unknown = 'x';
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    for (const payload of [cyclic, { model: 'm', n: 1n }, { model: 'm', messages: deep }]) {
      const err = await client().sendSecureRequest(payload).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/^payload cannot be serialized as JSON/);
      expect((err as Error).cause).toBeInstanceOf(Error);
    }
    const own = new Error('my own');
    await expect(client().sendSecureRequest({ model: 'm', toJSON: () => { throw own; } })).rejects.toBe(own);
    expect(keyFetches).toBe(0);
  });
});
