/**
 * The same-verdict promise of body/open.ts, as a test: openBody (the ciphertext located in the body,
 * decoded straight out of it, opened in place or into a buffer of its own) against the exact way
 * (package.ts openWith of parse(decode(body))): the same plaintext or the same error, with the same
 * number of RSA operations, over the shared vectors, hand-made damage and fast-check properties
 * (their seeds fixed: a corpus that is the same on every run). The entry points have their own:
 * the router's in packages/server/test/open-request.differential.test.ts, the client's in
 * tests/integration/answer-differential.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { importRsaPrivateKey, importRsaPublicKey } from '../../../src/crypto/rsa.js';
import { pemToDer } from '../../../src/crypto/pem.js';
import { subtle, type Bytes } from '../../../src/crypto/subtle.js';
import { openWith, sealPackage, sealWith, serializePackage, v1Opener, type PackageOpener } from '../../../src/protocol/package.js';
import { answerOpenerV2, answerSealingV2, openAnswerV2, openRequestV2, requestOpenerV2, requestSealingV2 } from '../../../src/protocol/v2.js';
import { openBody } from '../../../src/protocol/body/open.js';
import { readPackageBody, type BodyText } from '../../../src/protocol/body/read.js';
import { owned, type ByteSource, type OwnedBytes } from '../../../src/memory/owned-bytes.js';
import { LONG_STRING_BYTES } from '../../../src/sizes.js';
import { SecurityError } from '../../../src/errors.js';
import { readVectors, readVectorText } from '../../helpers/vectors.js';

const encoder = new TextEncoder();
const privateKey = (path: string) => importRsaPrivateKey(pemToDer(readVectorText(`v1/${path}`), 'PRIVATE KEY'), false);

/** Plaintext buffers that must all come back, zeroed. */
const live = new Set<Uint8Array>();
const plaintexts: ByteSource = {
  secure: true,
  take(size) {
    const b = new Uint8Array(size);
    live.add(b);
    return owned(b, true, () => {
      b.fill(0);
      expect(live.delete(b)).toBe(true);
    });
  },
};

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    throw new SecurityError('malformed package: not JSON');
  }
};

/** A way's result: the plaintext (hex) or the error, and the RSA private-key operations it took. */
type Outcome = ({ plaintext: string } | { error: string }) & { rsa: number };

/** Runs `run`, counting the RSA private-key operations (unwrapKey, decrypt) it makes. */
async function outcome(run: () => Promise<Uint8Array>): Promise<Outcome> {
  const unwrap = vi.spyOn(subtle(), 'unwrapKey');
  const decrypt = vi.spyOn(subtle(), 'decrypt');
  const rsa = () => unwrap.mock.calls.length + decrypt.mock.calls.filter(([params]) => (params as Algorithm).name === 'RSA-OAEP').length;
  try {
    const plaintext = Buffer.from(await run()).toString('hex');
    return { plaintext, rsa: rsa() };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}`, rsa: rsa() };
  } finally {
    unwrap.mockRestore();
    decrypt.mockRestore();
  }
}
afterEach(() => vi.restoreAllMocks());

/** The exact way: the body decoded and parsed whole, then openWith. */
async function openExact(body: Uint8Array, text: BodyText, opener: PackageOpener): Promise<Uint8Array> {
  return (await openWith(opener, text.parse(new TextDecoder('utf-8', { fatal: text.fatal }).decode(body)))).plaintext;
}

/**
 * openBody on a copy of `body`, into a buffer of its own or in place; the plaintext is copied out and
 * released. The copy's buffer stands for the client's (secure: zeroed when released) in place, for a
 * router's wire buffer (not zeroed) otherwise; what it held when given back is checked.
 */
async function openBytes(body: Uint8Array, text: BodyText, opener: PackageOpener, inPlace: boolean): Promise<Uint8Array> {
  const copy = body.slice();
  let givenBack: Uint8Array | undefined;
  const owner = owned(copy, inPlace, () => {
    givenBack = copy.slice();
    if (inPlace) copy.fill(0);
  });
  const read = readPackageBody(copy, text);
  const located = read.span !== undefined && inPlace;
  try {
    const { plaintext } = await openBody(owner, { text, read, opener, plaintexts, inPlace });
    const out = plaintext.bytes.slice();
    if (located) expect(plaintext.bytes.buffer).toBe(copy.buffer);
    counts[located ? 'inPlace' : 'own']++;
    plaintext.release();
    return out;
  } catch (err) {
    if (located) {
      counts.failedInPlace++;
      // Nothing of the plaintext is left in the body: the ciphertext (decoded in place, or not), or zeros.
      const decoded = ciphertextOf(body, read.span!);
      expect(givenBack!.every((byte, i) => byte === body[i] || byte === 0 || decoded[i] === byte)).toBe(true);
    } else {
      expect(Buffer.compare(givenBack!, body)).toBe(0); // ciphertext only, and not written
    }
    throw err;
  } finally {
    expect(live.size).toBe(0);
    expect(givenBack).toBeDefined();
  }
}

/** What decoding the body's ciphertext in place puts at the body's start (as far as it is base64). */
function ciphertextOf(body: Uint8Array, span: { start: number; end: number }): Buffer {
  return Buffer.from(Buffer.from(body.subarray(span.start, span.end)).toString('latin1'), 'base64');
}

/** The properties below run with this seed: the same damaged bodies every run, a corpus. */
const CORPUS_SEED = 0x6e6f6d79;

/** How often each way took a body (each must be taken, or the comparisons check less than they claim). */
const counts = { own: 0, inPlace: 0, failedInPlace: 0 };

/** The exact way, and openBody into its own buffer and in place, on the same body: the same plaintext or error, with the same RSA work. */
async function expectSameOpen(body: Uint8Array, opener: () => PackageOpener): Promise<Outcome> {
  const results: Outcome[] = [];
  for (const fatal of [true, false]) {
    const text = { fatal, parse };
    const exact = await outcome(() => openExact(body, text, opener()));
    expect(await outcome(() => openBytes(body, text, opener(), false))).toEqual(exact);
    expect(await outcome(() => openBytes(body, text, opener(), true))).toEqual(exact);
    results.push(exact);
  }
  return results[0]!;
}

let serverKey: CryptoKey;
let serverPublic: CryptoKey;
let bigBody: Uint8Array;
let bigPlaintext: Uint8Array;
const v1 = () => v1Opener(serverKey);

beforeAll(async () => {
  serverKey = await privateKey('keys/server_4096.pem');
  serverPublic = await importRsaPublicKey(pemToDer(readVectorText('v1/keys/server_4096.pub.pem'), 'PUBLIC KEY'));
  bigPlaintext = encoder.encode(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(300_000) }] }));
  bigBody = encoder.encode(serializePackage(await sealPackage(bigPlaintext as Bytes, serverPublic, { processed_at: 1765250382 })));
  // The first key that does not unwrap makes crypto/rsa.ts probe the engine once (its own RSA
  // operations, with a throwaway key): done here, so that the counts below are the packages' own.
  const pkg = await sealPackage(bigPlaintext as Bytes, serverPublic);
  await openWith(v1(), { ...pkg, encrypted_aes_key: pkg.encrypted_aes_key.replace(/^..../, 'AAAA') }).catch(() => undefined);
});

describe('openBody and the shared v1 vectors', () => {
  const valid = readVectors('valid');
  const invalid = readVectors('invalid');

  it.each(valid.map((v) => [v.file, v] as const))('%s opens to the expected bytes, from any JSON layout, with one RSA operation', async (_f, v) => {
    const key = await privateKey(v.private_key);
    for (const text of [JSON.stringify(v.package), JSON.stringify(v.package, null, 2), serializePackage(v.package as never)]) {
      const plaintext = await openBytes(encoder.encode(text), { fatal: true, parse }, v1Opener(key), false);
      expect(createHash('sha256').update(plaintext).digest('hex')).toBe(v.plaintext_sha256);
      expect(await expectSameOpen(encoder.encode(text), () => v1Opener(key))).toMatchObject({ rsa: 1 });
    }
  });

  it('locates the ciphertext of the large vector (the located way is the one tested) and decrypts into a buffer of its own', async () => {
    const v = valid.find((x) => x.file === 'request-150k.json')!;
    const body = encoder.encode(JSON.stringify(v.package));
    expect(body.length).toBeGreaterThan(LONG_STRING_BYTES);
    const read = readPackageBody(body, { fatal: true, parse });
    expect(read.span).toBeDefined();
    const { plaintext } = await openBody(owned(body, false, () => {}), { text: { fatal: true, parse }, read, opener: v1Opener(await privateKey(v.private_key)), plaintexts, inPlace: false });
    expect(live.has(plaintext.bytes)).toBe(true);
    expect(new TextDecoder().decode(plaintext.bytes)).toBe(v.plaintext_utf8);
    plaintext.release();
    // The body holds ciphertext only, as it came.
    expect(new TextDecoder().decode(body)).toBe(JSON.stringify(v.package));
  });

  it.each(invalid.map((v) => [v.file, v] as const))('%s is refused as openWith refuses it', async (_f, v) => {
    const key = await privateKey(v.private_key);
    const result = await expectSameOpen(encoder.encode(JSON.stringify(v.package)), () => v1Opener(key));
    expect(result).toHaveProperty('error');
  });
});

describe('openBody on large bodies', () => {
  it('leaves no plaintext behind on failure', async () => {
    const plaintext = await openBytes(bigBody, { fatal: false, parse }, v1(), false);
    expect(Buffer.from(plaintext).equals(Buffer.from(bigPlaintext))).toBe(true);
    // A wrong tag: everything was decrypted before the tag failed, and all of it is zeroed.
    const text = new TextDecoder().decode(bigBody);
    const pkg = JSON.parse(text) as { encrypted_payload: { tag: string } };
    const badTag = encoder.encode(text.replace(pkg.encrypted_payload.tag, Buffer.alloc(16, 7).toString('base64')));
    const seen: Uint8Array[] = [];
    const watching: ByteSource = { secure: true, take: (n) => { const t = plaintexts.take(n); seen.push(t.bytes); return t; } };
    const opening = { text: { fatal: true, parse }, opener: v1(), plaintexts: watching, inPlace: false };
    await expect(openBody(owned(badTag, false, () => {}), opening)).rejects.toThrow('decryption failed');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.every((b) => b === 0)).toBe(true);
    expect(live.size).toBe(0);
  });

  it('gives the exact verdict whatever is damaged, wherever, with the same RSA work (property)', async () => {
    const text = new TextDecoder().decode(bigBody);
    const start = text.indexOf('"ciphertext":"') + 14;
    const end = text.indexOf('"', start);
    const where = fc.oneof(
      fc.integer({ min: 0, max: bigBody.length - 1 }),
      fc.integer({ min: start - 3, max: start + 70_000 }),
      fc.integer({ min: end - 70_000, max: end + 3 }),
    );
    const damage = fc.constantFrom(0x00, 0x0a, 0x20, 0x22, 0x2b, 0x2d, 0x2f, 0x3d, 0x41, 0x5c, 0x5f, 0x7b, 0x7d, 0x80, 0xc3, 0xff);
    // One damage that the in-place open always takes and fails on, whatever the runs below draw:
    // another base64 character inside the ciphertext, so the tag fails.
    const tampered = bigBody.slice();
    const mid = (start + end) >> 1;
    tampered[mid] = tampered[mid] === 0x41 ? 0x42 : 0x41;
    const failedBefore = counts.failedInPlace;
    expect(await expectSameOpen(tampered, v1)).toEqual({ error: 'SecurityError: decryption failed: the package is not authentic or not for this key', rsa: 1 });
    expect(counts.failedInPlace).toBe(failedBefore + 2);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(where, damage), { minLength: 1, maxLength: 3 }), async (hits) => {
        const body = bigBody.slice();
        for (const [at, byte] of hits) body[Math.max(0, Math.min(body.length - 1, at))] = byte;
        await expectSameOpen(body, v1);
      }),
      { numRuns: 60, seed: CORPUS_SEED },
    );
  });

  it('opens in place: the plaintext where the body was, the same bytes; released, it gives the body back', async () => {
    const body = bigBody.slice();
    let given = false;
    const { plaintext } = await openBody(owned(body, true, () => (given = true)), { text: { fatal: true, parse }, opener: v1(), plaintexts, inPlace: true });
    expect(plaintext.bytes.buffer).toBe(body.buffer);
    expect(plaintext.bytes.byteOffset).toBe(body.byteOffset);
    expect(Buffer.from(plaintext.bytes).equals(Buffer.from(bigPlaintext))).toBe(true);
    expect(given).toBe(false);
    plaintext.release();
    expect(given).toBe(true);
  });

  it('in place in a buffer that does not zero itself (a router’s), zeroes the plaintext before it gives the body back', async () => {
    const body = bigBody.slice();
    const { plaintext } = await openBody(owned(body, false, () => expect(body.subarray(0, bigPlaintext.length).every((b) => b === 0)).toBe(true)), {
      text: { fatal: true, parse },
      opener: v1(),
      plaintexts,
      inPlace: true,
    });
    expect(plaintext.bytes.buffer).toBe(body.buffer);
    plaintext.release();
  });

  it('refuses a ciphertext that is not base64 before any RSA work, with the exact error, wherever the damage is', async () => {
    const text = new TextDecoder().decode(bigBody);
    const ciphertext = (JSON.parse(text) as { encrypted_payload: { ciphertext: string } }).encrypted_payload.ciphertext;
    const far = ciphertext.length - 1000; // past the first pieces
    const cases: Array<[string, string, string]> = [
      ['a raw control byte', text.replace(ciphertext, `${ciphertext.slice(0, far)}\u0001${ciphertext.slice(far + 1)}`), 'malformed package: not JSON'],
      ['a non-ASCII letter', text.replace(ciphertext, `${ciphertext.slice(0, far)}é${ciphertext.slice(far + 2)}`), 'malformed package: invalid base64'],
      ['a byte that is not UTF-8', text.replace(ciphertext, `${ciphertext.slice(0, far)}\u00ff${ciphertext.slice(far + 1)}`), ''],
      ['a character outside the alphabet', text.replace(ciphertext, `${ciphertext.slice(0, far)}-${ciphertext.slice(far + 1)}`), 'malformed package: invalid base64'],
      ['padding inside', text.replace(ciphertext, `${ciphertext.slice(0, 100)}=${ciphertext.slice(101)}`), 'malformed package: invalid base64'],
    ];
    for (const [what, edited, error] of cases) {
      const body = encoder.encode(edited);
      if (what === 'a byte that is not UTF-8') body[body.indexOf(0xc3, 60) + 1] = 0x28; // ÿ's second byte broken: c3 28
      const result = await expectSameOpen(body, v1);
      expect(result, what).toMatchObject({ rsa: 0 });
      if (error) expect(result, what).toMatchObject({ error: `SecurityError: ${error}` });
    }
  });

  it('a key that does not unwrap: one RSA operation, the generic error, the body not decrypted', async () => {
    const text = new TextDecoder().decode(bigBody);
    expect(await expectSameOpen(encoder.encode(text.replace('"encrypted_aes_key":"', '"encrypted_aes_key":"AAAA')), v1)).toEqual({
      error: 'SecurityError: decryption failed: the package is not authentic or not for this key',
      rsa: 1,
    });
  });

  it('leaves no plaintext in the body when the tag fails after everything was decrypted in place', async () => {
    const text = new TextDecoder().decode(bigBody);
    const pkg = JSON.parse(text) as { encrypted_payload: { tag: string; ciphertext: string } };
    const body = encoder.encode(text.replace(pkg.encrypted_payload.tag, Buffer.alloc(16, 7).toString('base64')));
    await expect(openBody(owned(body, false, () => {}), { text: { fatal: true, parse }, opener: v1(), plaintexts, inPlace: true })).rejects.toThrow('decryption failed');
    // Where the plaintext was decrypted, only zeros; the rest is the body as it came or the ciphertext.
    const length = Buffer.from(pkg.encrypted_payload.ciphertext, 'base64').length;
    expect(body.subarray(0, length).every((b) => b === 0)).toBe(true);
  });

  it.each([
    ['a duplicate ciphertext key, the first one long', (t: string, c: string) => t.replace(`"ciphertext":"${c}"`, `"ciphertext":"${c}","ciphertext":"QUJD"`)],
    ['a duplicate ciphertext key, the second one long', (t: string, c: string) => t.replace(`"ciphertext":"${c}"`, `"ciphertext":"QUJD","ciphertext":"${c}"`)],
    ['a second long field', (t: string, c: string) => t.replace('{"version"', `{"x":"${c}","version"`)],
    ['the ciphertext moved to another field', (t: string, c: string) => t.replace(`"ciphertext":"${c}"`, `"ciphertext":"QUJD","c":"${c}"`)],
    ['an escaped solidus in the ciphertext', (t: string, c: string) => t.replace(c, c.replace('/', '\\/'))],
    ['a byte order mark', (t: string) => `\ufeff${t}`],
    ['whitespace around everything', (t: string) => t.replace(/([{}:,])/g, ' $1\n')],
    ['the ciphertext first and unknown fields after', (t: string) => t.replace('}', ',"extra":{"a":[1,2,{"b":null}]}}')],
    ['a truncated body', (t: string) => t.slice(0, -2)],
    ['ciphertext padding removed', (t: string, c: string) => t.replace(c, c.replace(/=+$/, ''))],
    ['a wrong version', (t: string) => t.replace('"1.0"', '"2.0"')],
    ['a wrong version and bad base64 (the labels are judged first)', (t: string, c: string) => t.replace('"1.0"', '"2.0"').replace(c, `-${c.slice(1)}`)],
  ])('gives the exact verdict for %s', async (_what, edit) => {
    const text = new TextDecoder().decode(bigBody);
    const ciphertext = (JSON.parse(text) as { encrypted_payload: { ciphertext: string } }).encrypted_payload.ciphertext;
    await expectSameOpen(encoder.encode(edit(text, ciphertext)), v1);
  });
});

describe('openBody on small bodies (parsed whole)', () => {
  let small: Uint8Array;
  let smallPlaintext: Uint8Array;

  beforeAll(async () => {
    smallPlaintext = encoder.encode(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'a short prompt' }] }));
    small = encoder.encode(serializePackage(await sealPackage(smallPlaintext as Bytes, serverPublic, { processed_at: 1765250382 })));
    expect(small.length).toBeLessThan(LONG_STRING_BYTES);
  });

  it('decrypts into a buffer from `plaintexts` (secure memory on the client), with one RSA operation', async () => {
    const read = readPackageBody(small, { fatal: true, parse });
    expect(read.span).toBeUndefined();
    let plaintext: OwnedBytes | undefined;
    const opening = { text: { fatal: true, parse }, read, opener: v1(), plaintexts, inPlace: true };
    const result = await outcome(async () => (plaintext = (await openBody(owned(small as Uint8Array<ArrayBuffer>, false, () => {}), opening)).plaintext).bytes);
    expect(result.rsa).toBe(1);
    expect(live.has(plaintext!.bytes)).toBe(true);
    expect(Buffer.from(plaintext!.bytes).equals(Buffer.from(smallPlaintext))).toBe(true);
    plaintext!.release();
  });

  it('refuses a forgery with the exact verdict, the same RSA work, leaving nothing behind', async () => {
    const text = new TextDecoder().decode(small);
    const pkg = JSON.parse(text) as { encrypted_payload: { tag: string; ciphertext: string } };
    const cases: Array<[string, string, number]> = [
      ['a wrong tag', text.replace(pkg.encrypted_payload.tag, Buffer.alloc(16, 7).toString('base64')), 1],
      ['a key that does not unwrap', text.replace('"encrypted_aes_key":"', '"encrypted_aes_key":"AAAA'), 1],
      ['a ciphertext that is not base64', text.replace(pkg.encrypted_payload.ciphertext, `${pkg.encrypted_payload.ciphertext.slice(1)}-`), 0],
      ['a ciphertext that is not a string', text.replace(`"${pkg.encrypted_payload.ciphertext}"`, '7'), 0],
    ];
    for (const [what, edited, rsa] of cases) {
      const result = await expectSameOpen(encoder.encode(edited), v1);
      expect(result, what).toHaveProperty('error');
      expect(result.rsa, what).toBe(rsa);
    }
  });

  it('gives the exact verdict whatever is damaged, wherever (property)', async () => {
    const damage = fc.constantFrom(0x00, 0x0a, 0x20, 0x22, 0x2b, 0x2d, 0x2f, 0x30, 0x3d, 0x41, 0x5c, 0x7b, 0x7d, 0x80, 0xc3, 0xff);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: small.length - 1 }), damage), { minLength: 1, maxLength: 3 }), async (hits) => {
        const body = small.slice();
        for (const [at, byte] of hits) body[at] = byte;
        await expectSameOpen(body, v1);
      }),
      { numRuns: 60, seed: CORPUS_SEED },
    );
  });

  it('v2, both ways: the same plaintext or error as openRequestV2 and openAnswerV2 (property)', async () => {
    const k = new Uint8Array(randomBytes(32)) as Bytes;
    const binding = { payloadId: 'id-3', tier: undefined };
    const { sealing, answerKey } = await requestSealingV2(k, serverPublic, binding);
    const request = encoder.encode(serializePackage(await sealWith(sealing, smallPlaintext as Bytes)));
    const { answerKey: routerKey } = await openRequestV2(JSON.parse(new TextDecoder().decode(request)), serverKey, binding);
    const answer = encoder.encode(serializePackage(await sealWith(answerSealingV2(routerKey, 'id-3'), smallPlaintext as Bytes)));
    expect(Buffer.from(await openAnswerV2(JSON.parse(new TextDecoder().decode(answer)), await answerKey, 'id-3'))).toEqual(Buffer.from(smallPlaintext));
    const router = () => requestOpenerV2(serverKey, binding) as PackageOpener;
    const client = () => answerOpenerV2(answerKey, 'id-3');
    expect(await expectSameOpen(request, router)).toEqual({ plaintext: Buffer.from(smallPlaintext).toString('hex'), rsa: 1 });
    expect(await expectSameOpen(answer, client)).toEqual({ plaintext: Buffer.from(smallPlaintext).toString('hex'), rsa: 0 });
    const damage = fc.constantFrom(0x00, 0x22, 0x2b, 0x2d, 0x30, 0x3d, 0x41, 0x5c, 0x7d, 0xff);
    for (const [body, opener] of [[request, router], [answer, client]] as const) {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: body.length - 1 }), damage, async (at, byte) => {
          const damaged = body.slice();
          damaged[at] = byte;
          await expectSameOpen(damaged, opener);
        }),
        { numRuns: 40, seed: CORPUS_SEED },
      );
    }
  });
});

it('the comparisons above took every way: into a buffer of its own, in place, and failing in place', () => {
  // Otherwise the comparisons checked less than they claim.
  expect(counts.own).toBeGreaterThan(0);
  expect(counts.inPlace).toBeGreaterThan(0);
  expect(counts.failedInPlace).toBeGreaterThan(0);
});

describe('openBody with a key node:crypto cannot take (a caller\'s non-extractable one: Web Crypto opens it)', () => {
  it.each([
    ['a small body, into a buffer of its own', 100],
    ['a large body, into a buffer of its own and in place', 300_000],
  ])('%s: the plaintext is the one sealed, and Web Crypto\'s own buffer is zeroed', async (_what, size) => {
    const key = await subtle().importKey('raw', randomBytes(32), 'AES-GCM', false, ['encrypt', 'decrypt']);
    const sealed = encoder.encode(JSON.stringify({ content: 'y'.repeat(size) }));
    const body = encoder.encode(serializePackage(await sealWith(answerSealingV2(key, 'pid-web'), sealed as Bytes)));
    const decrypt = subtle().decrypt.bind(subtle());
    const webCryptos: ArrayBuffer[] = [];
    vi.spyOn(subtle(), 'decrypt').mockImplementation(async (...args: Parameters<SubtleCrypto['decrypt']>) => {
      const out = await decrypt(...args);
      webCryptos.push(out);
      return out;
    });
    for (const inPlace of [false, true]) {
      const text = { fatal: true, parse };
      expect(Buffer.from(await openBytes(body, text, answerOpenerV2(key, 'pid-web'), inPlace)).equals(Buffer.from(sealed))).toBe(true);
    }
    expect(webCryptos.length).toBe(2);
    for (const out of webCryptos) expect(new Uint8Array(out).every((b) => b === 0)).toBe(true);
  });
});
