/**
 * The router's side of protocol v2 over real HTTP: the key response advertises it, the shared
 * vectors/v2 requests open to their exact bytes (and the invalid ones get 400 with nothing
 * processed), answers are v2 and open with the request's own K, and `protocol: 1` is a v1-only router.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  HEADERS,
  PACKAGE_CONTENT_TYPE,
  PATHS,
  V2_ANSWER_ALGORITHM,
  decodeBase64,
  deriveAnswerKey,
  importRsaPrivateKey,
  openAnswerV2,
  openRequestV2,
  parseProtocolHeader,
  parseServerKey,
  pemToDer,
  sealRequestV2,
  serializePackage,
} from '@nomyo/core/protocol';
import { echoModel, startServer, type ChatRequest, type NomyoServer } from '../src/index.js';
import { CHAT, VECTOR_KEY_FILE, post, sealRequest } from './helpers.js';

const V2_DIR = fileURLToPath(new URL('../../../test-vectors/v2/', import.meta.url));

interface RequestVector {
  file: string;
  description: string;
  private_key: string;
  headers: Record<string, string>;
  package: unknown;
  aes_key: string;
  plaintext_utf8?: string;
  plaintext_sha256?: string;
}

function readRequests(kind: 'valid' | 'invalid'): RequestVector[] {
  const dir = `${V2_DIR}requests/${kind}/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, ...(JSON.parse(readFileSync(dir + file, 'utf8')) as Omit<RequestVector, 'file'>) }));
}

const valid = readRequests('valid');
const invalid = readRequests('invalid');
const bytes = (b64: string) => decodeBase64(b64) as Uint8Array<ArrayBuffer>;
const binding = (v: RequestVector) => ({ payloadId: v.headers['X-Payload-ID']!, tier: v.headers['X-Security-Tier'] });
const vectorKey = (v: RequestVector) => importRsaPrivateKey(pemToDer(readFileSync(`${V2_DIR}${v.private_key}`, 'utf8'), 'PRIVATE KEY'), false);

/** POSTs a v2 package with exactly these headers: no X-Public-Key (v2 needs none). */
function postV2(url: string, body: string, headers: Record<string, string | undefined>): Promise<Response> {
  return post(url, body, { [HEADERS.publicKey]: undefined, ...headers });
}

let server: NomyoServer;
let seen: ChatRequest[] = [];
beforeAll(async () => {
  server = await startServer({
    keyFile: VECTOR_KEY_FILE,
    recordRequests: true,
    model: (request, context) => {
      seen.push(request);
      return echoModel(request, context);
    },
  });
});
afterAll(() => server.close());
beforeEach(() => {
  seen = [];
});

describe('shared vectors v2, requests', () => {
  it('has the vectors', () => {
    expect(valid.length).toBeGreaterThanOrEqual(3);
    expect(invalid.length).toBeGreaterThanOrEqual(5);
  });

  it.each(valid.map((v) => [v.file, v] as const))('%s opens to the exact bytes', async (_f, v) => {
    const { plaintext } = await openRequestV2(v.package, await vectorKey(v), binding(v));
    expect(new TextDecoder().decode(plaintext)).toBe(v.plaintext_utf8);
    expect(createHash('sha256').update(plaintext).digest('hex')).toBe(v.plaintext_sha256);
  });

  it.each(valid.map((v) => [v.file, v] as const))('%s over HTTP: 200, the model sees it, the v2 answer opens with its K', async (_f, v) => {
    const res = await postV2(server.url, JSON.stringify(v.package), v.headers);
    expect(res.status).toBe(200);
    expect(seen).toEqual([JSON.parse(v.plaintext_utf8!)]);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer.version).toBe('2.0');
    expect(answer.algorithm).toBe(V2_ANSWER_ALGORITHM);
    expect(answer).not.toHaveProperty('encrypted_aes_key');
    const key = await deriveAnswerKey(bytes(v.aes_key), v.headers['X-Payload-ID']!, 'decrypt');
    const completion = JSON.parse(new TextDecoder().decode(await openAnswerV2(answer, key, v.headers['X-Payload-ID']!)));
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0].message.content).toMatch(/^echo: /);
  });

  it.each(invalid.map((v) => [v.file, v] as const))('%s → 400 over HTTP, nothing processed', async (_f, v) => {
    await expect(openRequestV2(v.package, await vectorKey(v), binding(v))).rejects.toMatchObject({ name: 'SecurityError' });
    const res = await postV2(server.url, JSON.stringify(v.package), v.headers);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toBe('decryption failed: the package is not authentic or not for this key');
    expect(seen).toEqual([]);
  });
});

describe('a v2 router', () => {
  it('advertises "1, 2" on the key response, readable across origins', async () => {
    const res = await fetch(server.url + PATHS.publicKey, { headers: { Origin: 'https://app.example' } });
    expect(res.headers.get(HEADERS.protocol)).toBe('1, 2');
    expect(parseProtocolHeader(res.headers.get(HEADERS.protocol))).toEqual([1, 2]);
    expect(res.headers.get('access-control-expose-headers')?.split(/, */)).toContain(HEADERS.protocol);
  });

  /** A client-side v2 request made with core's own sealing, for the header checks below. */
  async function sealedV2(tier: string | undefined, request: object = CHAT) {
    const { key } = await parseServerKey(server.publicKeyPem);
    const payloadId = crypto.randomUUID();
    const k = crypto.getRandomValues(new Uint8Array(32));
    const { package: pkg, answerKey } = await sealRequestV2(new TextEncoder().encode(JSON.stringify(request)), k, key, { payloadId, tier });
    return { body: serializePackage(pkg), payloadId, answerKey: await answerKey };
  }

  it('answers a v2 request with v2, sealed for that request only; an X-Public-Key sent anyway is ignored', async () => {
    const { body, payloadId, answerKey } = await sealedV2('high');
    const res = await post(server.url, body, { [HEADERS.payloadId]: payloadId, [HEADERS.securityTier]: 'high' });
    expect(res.status).toBe(200);
    const answer = await res.json();
    const completion = JSON.parse(new TextDecoder().decode(await openAnswerV2(answer, answerKey, payloadId)));
    expect(completion.choices[0].message.content).toBe('echo: hello there world');
    // The same answer does not open as another payload id's.
    await expect(openAnswerV2(answer, answerKey, crypto.randomUUID())).rejects.toMatchObject({ name: 'SecurityError' });
  });

  it.each([
    ['the tier stripped', 'maximum', undefined],
    ['the tier downgraded', 'maximum', 'standard'],
    ['a tier added', undefined, 'high'],
  ])('%s → 400, the model never runs', async (_name, sealedTier, sentTier) => {
    const { body, payloadId } = await sealedV2(sealedTier);
    const res = await postV2(server.url, body, { [HEADERS.payloadId]: payloadId, [HEADERS.securityTier]: sentTier });
    expect(res.status).toBe(400);
    expect(seen).toEqual([]);
  });

  it('a replayed stream request is answered under keys from a fresh salt: no record key, and so no nonce, is used twice', async () => {
    const { body, payloadId } = await sealedV2(undefined, { ...CHAT, stream: true });
    const salts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(server.url, body, { [HEADERS.payloadId]: payloadId, Accept: 'text/event-stream' });
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const header = /^event: nomyo-stream\ndata: (.*)$/m.exec(await res.text())?.[1];
      salts.push((JSON.parse(header!) as { salt: string }).salt);
    }
    expect(new Set(salts).size).toBe(3);
    expect(salts.every((salt) => Buffer.from(salt, 'base64').length === 32)).toBe(true);
  });

  it('another payload id → 400; a tier that is no tier → 400 naming the header', async () => {
    const { body } = await sealedV2(undefined);
    expect((await postV2(server.url, body, { [HEADERS.payloadId]: crypto.randomUUID() })).status).toBe(400);
    const bad = await sealedV2('high');
    const res = await postV2(server.url, bad.body, { [HEADERS.payloadId]: bad.payloadId, [HEADERS.securityTier]: 'high, standard' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/X-Security-Tier/);
    expect(seen).toEqual([]);
  });

  it('still answers v1 packages with v1', async () => {
    const res = await post(server.url, JSON.stringify(await sealRequest(server.publicKeyPem, CHAT)));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { version: string }).version).toBe('1.0');
  });
});

describe('protocol: 1, a v1-only router', () => {
  let v1: NomyoServer;
  beforeAll(async () => {
    v1 = await startServer({ keyFile: VECTOR_KEY_FILE, protocol: 1 });
  });
  afterAll(() => v1.close());

  it('advertises nothing and refuses a v2 package with 400, as routers before v2 do', async () => {
    const res = await fetch(v1.url + PATHS.publicKey);
    expect(res.headers.get(HEADERS.protocol)).toBeNull();
    const v = valid[0]!;
    const refused = await fetch(v1.url + PATHS.secureCompletion, {
      method: 'POST',
      headers: { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, ...v.headers },
      body: JSON.stringify(v.package),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/X-Public-Key|version/);
    expect((await post(v1.url, JSON.stringify(await sealRequest(v1.publicKeyPem, CHAT)))).status).toBe(200);
  });

  it('refuses an unknown protocol option', () => {
    expect(() => startServer({ protocol: 3 as never })).toThrow(RangeError);
  });
});
