/**
 * The router's verdict on a request body, at its entry point (a real POST over loopback), is the exact
 * way's: the body decoded and parsed whole, then core's openWith. The same status, the same detail,
 * and the same number of RSA private-key operations, for small bodies (parsed whole) and large ones
 * (the ciphertext located in the body and opened in place, or into a buffer of its own when a request
 * log keeps bodies), v1 and v2, over hand-made damage and random damage. A body that is not even a
 * well-formed package never costs an RSA operation.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  HEADERS,
  importRsaPrivateKey,
  openWith,
  parseJsonPackage,
  parseServerKey,
  pemToDer,
  requestOpenerV2,
  requestSealingV2,
  sealWith,
  serializePackage,
  v1Opener,
  v1Sealing,
  type PackageOpener,
} from '@nomyo/core/protocol';
import { startServer, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE, post } from './helpers.js';

const encoder = new TextEncoder();
const PAYLOAD_ID = 'differential-1';
const TIER = 'high';

interface Verdict {
  status: number;
  detail?: string;
  rsa: number;
}

/** RSA private-key operations (unwrapKey, RSA-OAEP decrypt) made while `run` runs: the router is in this process. */
async function countingRsa<T>(run: () => Promise<T>): Promise<{ result: T; rsa: number }> {
  const unwrap = vi.spyOn(crypto.subtle, 'unwrapKey');
  const decrypt = vi.spyOn(crypto.subtle, 'decrypt');
  try {
    const result = await run();
    return { result, rsa: unwrap.mock.calls.length + decrypt.mock.calls.filter(([params]) => (params as Algorithm).name === 'RSA-OAEP').length };
  } finally {
    unwrap.mockRestore();
    decrypt.mockRestore();
  }
}

/** The exact way: UTF-8 decoded strictly, parsed whole, opened with openWith; the router's 400 detail for each failure. */
async function exact(body: Uint8Array, opener: PackageOpener): Promise<Verdict> {
  const { result, rsa } = await countingRsa(async (): Promise<Omit<Verdict, 'rsa'>> => {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      return { status: 400, detail: 'malformed package: not UTF-8' };
    }
    try {
      const plaintext = (await openWith(opener, parseJsonPackage(text))).plaintext;
      plaintext.fill(0);
      return { status: 200 };
    } catch (err) {
      return { status: 400, detail: (err as Error).message };
    }
  });
  return { ...result, rsa };
}

/** What the router answers to `body` (v2 headers bound as sealed). */
async function routed(server: NomyoServer, body: Uint8Array, version: 1 | 2): Promise<Verdict> {
  const headers = version === 2 ? { [HEADERS.payloadId]: PAYLOAD_ID, [HEADERS.securityTier]: TIER } : {};
  const { result, rsa } = await countingRsa(async () => {
    const res = await post(server.url, body as Uint8Array<ArrayBuffer>, headers);
    const json = (await res.json()) as { detail?: string };
    return res.status === 200 ? { status: 200 } : { status: res.status, detail: json.detail };
  });
  return { ...result, rsa };
}

let inPlace: NomyoServer; // bodies are the request's own: opened in place
let logged: NomyoServer; // a request log keeps bodies: opened into a buffer of their own
let privateKey: CryptoKey;
const bodies: Record<string, Uint8Array> = {};
const request = (content: string) => encoder.encode(JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }));

beforeAll(async () => {
  inPlace = await startServer({ keyFile: VECTOR_KEY_FILE });
  logged = await startServer({ keyFile: VECTOR_KEY_FILE, recordRequests: 2 });
  privateKey = await importRsaPrivateKey(pemToDer(readFileSync(VECTOR_KEY_FILE, 'utf8'), 'PRIVATE KEY'), false);
  const { key } = await parseServerKey(inPlace.publicKeyPem);
  for (const [size, content] of [['small', 'a short prompt'], ['large', 'a long prompt. '.repeat(40_000)]] as const) {
    bodies[`v1 ${size}`] = encoder.encode(serializePackage(await sealWith(await v1Sealing(key), request(content))));
    const { sealing } = await requestSealingV2(crypto.getRandomValues(new Uint8Array(32)), key, { payloadId: PAYLOAD_ID, tier: TIER });
    bodies[`v2 ${size}`] = encoder.encode(serializePackage(await sealWith(sealing, request(content))));
  }
  // The first key that does not unwrap makes core probe the engine once (RSA operations of its own).
  await post(inPlace.url, encoder.encode(new TextDecoder().decode(bodies['v1 small']!).replace('"encrypted_aes_key":"', '"encrypted_aes_key":"AAAA')) as Uint8Array<ArrayBuffer>);
});
afterAll(async () => {
  await inPlace.close();
  await logged.close();
});

const opener = (version: 1 | 2): PackageOpener => (version === 1 ? v1Opener(privateKey) : requestOpenerV2(privateKey, { payloadId: PAYLOAD_ID, tier: TIER }));

async function expectExactVerdict(body: Uint8Array, version: 1 | 2): Promise<Verdict> {
  const expected = await exact(body, opener(version));
  expect(await routed(inPlace, body, version)).toEqual(expected);
  expect(await routed(logged, body, version)).toEqual(expected);
  return expected;
}

/** `body` with the base64 text of its ciphertext edited. */
function editCiphertext(body: Uint8Array, edit: (ciphertext: string) => string): Uint8Array {
  const text = new TextDecoder().decode(body);
  const ciphertext = (JSON.parse(text) as { encrypted_payload: { ciphertext: string } }).encrypted_payload.ciphertext;
  return encoder.encode(text.replace(ciphertext, edit(ciphertext)));
}

describe.each([1, 2] as const)('the router’s verdict, protocol %i', (version) => {
  it.each(['small', 'large'])('a %s body that opens: 200, one RSA operation', async (size) => {
    expect(await expectExactVerdict(bodies[`v${version} ${size}`]!, version)).toEqual({ status: 200, rsa: 1 });
  });

  it.each(['small', 'large'])('a %s body whose ciphertext is not a package’s: the exact 400, before any RSA operation', async (size) => {
    const body = bodies[`v${version} ${size}`]!;
    const far = (c: string) => Math.max(c.length >> 1, c.length - 1000); // past the first pieces of a large one
    const cases: Array<[string, Uint8Array]> = [
      ['a raw control byte', editCiphertext(body, (c) => `${c.slice(0, far(c))}\u0001${c.slice(far(c) + 1)}`)],
      ['a character outside the alphabet', editCiphertext(body, (c) => `${c.slice(0, far(c))}-${c.slice(far(c) + 1)}`)],
      ['a letter that is not ASCII', editCiphertext(body, (c) => `${c.slice(0, far(c))}é${c.slice(far(c) + 2)}`)],
      ['a character short', editCiphertext(body, (c) => c.slice(1))],
    ];
    const broken = editCiphertext(body, (c) => `${c.slice(0, far(c))}é${c.slice(far(c) + 2)}`);
    broken[broken.indexOf(0xc3, 60) + 1] = 0x28; // é's second byte broken: not UTF-8
    cases.push(['a byte that is not UTF-8', broken]);
    for (const [what, damaged] of cases) {
      const verdict = await expectExactVerdict(damaged, version);
      expect(verdict.status, what).toBe(400);
      expect(verdict.rsa, what).toBe(0);
    }
  });

  it('a large body damaged anywhere, anyhow: the exact verdict and RSA work (property)', async () => {
    const body = bodies[`v${version} large`]!;
    const text = new TextDecoder().decode(body);
    const start = text.indexOf('"ciphertext":"') + 14;
    const end = text.indexOf('"', start);
    const where = fc.oneof(fc.integer({ min: 0, max: body.length - 1 }), fc.integer({ min: start - 3, max: start + 70_000 }), fc.integer({ min: end - 70_000, max: end + 3 }));
    const damage = fc.constantFrom(0x00, 0x0a, 0x20, 0x22, 0x2b, 0x2d, 0x2f, 0x3d, 0x41, 0x5c, 0x5f, 0x7b, 0x7d, 0x80, 0xc3, 0xff);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(where, damage), { minLength: 1, maxLength: 3 }), async (hits) => {
        const damaged = body.slice();
        for (const [at, byte] of hits) damaged[Math.max(0, Math.min(damaged.length - 1, at))] = byte;
        await expectExactVerdict(damaged, version);
      }),
      { numRuns: 25 },
    );
  });
});
