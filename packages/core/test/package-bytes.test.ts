/**
 * The bytes way of opening a package (package-bytes.ts: the ciphertext located in the body, decoded
 * straight out of it, opened in place) against the exact way (package.ts openWith of parse(decode(body))):
 * the same plaintext or the same error, with the same number of RSA operations, over the shared
 * vectors, hand-made damage and properties. The router's entry point has its own comparison
 * (packages/server/test/malformed.test.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { importRsaPrivateKey, importRsaPublicKey } from '../src/crypto/rsa.js';
import { pemToDer } from '../src/crypto/pem.js';
import { rsaSpki } from '../src/crypto/rsa-der.js';
import { subtle, type Bytes } from '../src/crypto/subtle.js';
import { openWith, sealPackage, sealWith, serializePackage, v1Opener, v1Sealing, type PackageOpener, type Sealing } from '../src/protocol/package.js';
import { answerOpenerV2, answerSealingV2, openAnswerV2, openRequestV2, requestOpenerV2, requestSealingV2 } from '../src/protocol/v2.js';
import {
  MIN_LOCATED_BODY,
  inPlaceRoom,
  openPackageBody,
  openPackageBodyInPlace,
  readPackageBody,
  writeSealedPackage,
  writeSealedPackageInPlace,
  type BodyText,
} from '../src/protocol/package-bytes.js';
import { SecurityError } from '../src/errors.js';
import { readVectors, readVectorText } from './helpers/vectors.js';

const encoder = new TextEncoder();
const privateKey = (path: string) => importRsaPrivateKey(pemToDer(readVectorText(`v1/${path}`), 'PRIVATE KEY'), false);

/** Plaintext buffers that must all come back. */
const buffers = {
  live: new Set<Uint8Array>(),
  alloc(size: number) {
    const b = new Uint8Array(size);
    this.live.add(b);
    return b;
  },
  free(b: Uint8Array) {
    b.fill(0);
    expect(this.live.delete(b)).toBe(true);
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

/** The bytes way; the plaintext is copied out and its buffer given back (every buffer taken comes back). */
async function openBytes(body: Uint8Array, text: BodyText, opener: PackageOpener): Promise<Uint8Array> {
  const original = body.slice();
  try {
    const { plaintext } = await openPackageBody(body, readPackageBody(body, text), opener, buffers);
    const copy = plaintext.slice();
    if (buffers.live.has(plaintext)) buffers.free(plaintext);
    return copy;
  } finally {
    expect(buffers.live.size).toBe(0);
    expect(Buffer.compare(body, original)).toBe(0); // ciphertext only, and not written
  }
}

/** How often the in-place open took the body, declined it (no located ciphertext) and failed. */
const inPlaceCount = { declined: 0, opened: 0, failed: 0 };

/**
 * Opens `body` in place, as a router does with a request body of its own, and a client with a large
 * answer; where that declines (before any work), the usual way. Nothing of the plaintext may be left
 * in the body after a failure: every byte is as it came, zero, or the ciphertext decoded in place.
 */
async function openInPlace(body: Uint8Array, text: BodyText, opener: PackageOpener): Promise<Uint8Array> {
  const original = body.slice();
  const read = readPackageBody(body, text);
  let opened: Awaited<ReturnType<typeof openPackageBodyInPlace>>;
  try {
    opened = await openPackageBodyInPlace(body, read, opener);
  } catch (err) {
    inPlaceCount.failed++;
    const span = read.span!;
    let ciphertext: Buffer = Buffer.alloc(0);
    try {
      ciphertext = Buffer.from(Buffer.from(original.subarray(span.start, span.end)).toString('latin1'), 'base64');
    } catch {
      /* not base64: nothing decoded is expected */
    }
    expect(body.every((b, i) => b === original[i] || b === 0 || b === ciphertext[i])).toBe(true);
    throw err;
  }
  if (!opened) {
    inPlaceCount.declined++;
    expect(Buffer.compare(body, original)).toBe(0);
    return openBytes(body, text, opener);
  }
  inPlaceCount.opened++;
  const copy = opened.plaintext.slice();
  opened.plaintext.fill(0);
  return copy;
}

/** The exact way, the bytes way and the in-place way on the same body: the same plaintext or error, with the same RSA work. */
async function expectSameOpen(body: Uint8Array, opener: () => PackageOpener): Promise<Outcome> {
  const results: Outcome[] = [];
  for (const fatal of [true, false]) {
    const text = { fatal, parse };
    const exact = await outcome(() => openExact(body, text, opener()));
    expect(await outcome(() => openBytes(body.slice(), text, opener()))).toEqual(exact);
    expect(await outcome(() => openInPlace(body.slice(), text, opener()))).toEqual(exact);
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

describe('openPackageBody and the shared v1 vectors', () => {
  const valid = readVectors('valid');
  const invalid = readVectors('invalid');

  it.each(valid.map((v) => [v.file, v] as const))('%s opens to the expected bytes, from any JSON layout, with one RSA operation', async (_f, v) => {
    const key = await privateKey(v.private_key);
    for (const text of [JSON.stringify(v.package), JSON.stringify(v.package, null, 2), serializePackage(v.package as never)]) {
      const plaintext = await openBytes(encoder.encode(text), { fatal: true, parse }, v1Opener(key));
      expect(createHash('sha256').update(plaintext).digest('hex')).toBe(v.plaintext_sha256);
      expect(await expectSameOpen(encoder.encode(text), () => v1Opener(key))).toMatchObject({ rsa: 1 });
    }
  });

  it('locates the ciphertext of the large vector (the fast way is the one tested) and decrypts into a buffer of its own', async () => {
    const v = valid.find((x) => x.file === 'request-150k.json')!;
    const body = encoder.encode(JSON.stringify(v.package));
    expect(body.length).toBeGreaterThan(MIN_LOCATED_BODY);
    const read = readPackageBody(body, { fatal: true, parse });
    expect(read.span).toBeDefined();
    const { plaintext } = await openPackageBody(body, read, v1Opener(await privateKey(v.private_key)), buffers);
    expect(buffers.live.has(plaintext)).toBe(true);
    expect(new TextDecoder().decode(plaintext)).toBe(v.plaintext_utf8);
    buffers.free(plaintext);
    // The body holds ciphertext only, as it came.
    expect(new TextDecoder().decode(body)).toBe(JSON.stringify(v.package));
  });

  it.each(invalid.map((v) => [v.file, v] as const))('%s is refused as openWith refuses it', async (_f, v) => {
    const key = await privateKey(v.private_key);
    const result = await expectSameOpen(encoder.encode(JSON.stringify(v.package)), () => v1Opener(key));
    expect(result).toHaveProperty('error');
  });
});

describe('openPackageBody on large bodies', () => {
  it('leaves no plaintext behind on failure', async () => {
    const plaintext = await openBytes(bigBody.slice(), { fatal: false, parse }, v1());
    expect(Buffer.from(plaintext)).toEqual(Buffer.from(bigPlaintext));
    // A wrong tag: everything was decrypted before the tag failed, and all of it is zeroed.
    const text = new TextDecoder().decode(bigBody);
    const pkg = JSON.parse(text) as { encrypted_payload: { tag: string } };
    const badTag = encoder.encode(text.replace(pkg.encrypted_payload.tag, Buffer.alloc(16, 7).toString('base64')));
    const seen: Uint8Array[] = [];
    const watching = { alloc: (n: number) => (seen.push(buffers.alloc(n)), seen.at(-1)!), free: (b: Uint8Array) => buffers.free(b) };
    await expect(openPackageBody(badTag, readPackageBody(badTag, { fatal: true, parse }), v1(), watching)).rejects.toThrow('decryption failed');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.every((b) => b === 0)).toBe(true);
    expect(buffers.live.size).toBe(0);
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
    const failedBefore = inPlaceCount.failed;
    expect(await expectSameOpen(tampered, v1)).toEqual({ error: 'SecurityError: decryption failed: the package is not authentic or not for this key', rsa: 1 });
    expect(inPlaceCount.failed).toBe(failedBefore + 2);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(where, damage), { minLength: 1, maxLength: 3 }), async (hits) => {
        const body = bigBody.slice();
        for (const [at, byte] of hits) body[Math.max(0, Math.min(body.length - 1, at))] = byte;
        await expectSameOpen(body, v1);
      }),
      { numRuns: 60 },
    );
  });

  it('opens in place: the plaintext where the body was, the same bytes', async () => {
    const body = bigBody.slice();
    const read = readPackageBody(body, { fatal: true, parse });
    const { plaintext } = (await openPackageBodyInPlace(body, read, v1()))!;
    expect(plaintext.buffer).toBe(body.buffer);
    expect(plaintext.byteOffset).toBe(body.byteOffset);
    expect(Buffer.from(plaintext)).toEqual(Buffer.from(bigPlaintext));
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
    const read = readPackageBody(body, { fatal: true, parse });
    await expect(openPackageBodyInPlace(body, read, v1())).rejects.toThrow('decryption failed');
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

describe('openPackageBody on small bodies (parsed whole)', () => {
  let small: Uint8Array;
  let smallPlaintext: Uint8Array;

  beforeAll(async () => {
    smallPlaintext = encoder.encode(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'a short prompt' }] }));
    small = encoder.encode(serializePackage(await sealPackage(smallPlaintext as Bytes, serverPublic, { processed_at: 1765250382 })));
    expect(small.length).toBeLessThan(MIN_LOCATED_BODY);
  });

  it('decrypts into a buffer from `buffers` (secure memory on the client), with one RSA operation', async () => {
    const read = readPackageBody(small, { fatal: true, parse });
    expect(read.span).toBeUndefined();
    let plaintext: Uint8Array | undefined;
    const result = await outcome(async () => (plaintext = (await openPackageBody(small, read, v1(), buffers)).plaintext));
    expect(result.rsa).toBe(1);
    expect(buffers.live.has(plaintext!)).toBe(true);
    expect(Buffer.from(plaintext!)).toEqual(Buffer.from(smallPlaintext));
    buffers.free(plaintext!);
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
      { numRuns: 60 },
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
        { numRuns: 40 },
      );
    }
  });
});

describe('writeSealedPackage', () => {
  const write = async (sealing: Sealing, plaintext: Uint8Array) => {
    const out = await writeSealedPackage(sealing, plaintext, (size) => new Uint8Array(size + 5));
    return new TextDecoder().decode(out.buffer.subarray(0, out.length));
  };

  it('writes byte for byte what serializePackage writes, v1, for every length around the pieces', async () => {
    for (const n of [0, 1, 2, 3, 49151, 49152, 49153, 98305, 200_000]) {
      const plaintext = new Uint8Array(randomBytes(n)) as Bytes;
      const sealing = await v1Sealing(serverPublic, n % 2 ? { processed_at: 1765250382 } : undefined);
      expect(await write(sealing, plaintext)).toBe(serializePackage(await sealWith(sealing, plaintext)));
    }
  });

  it('writes v2 requests and answers byte for byte, associated data included, and they open', async () => {
    const plaintext = new Uint8Array(randomBytes(100_001)) as Bytes;
    const k = new Uint8Array(randomBytes(32)) as Bytes;
    const binding = { payloadId: 'id-1', tier: 'high' };
    const { sealing, answerKey } = await requestSealingV2(k, serverPublic, binding);
    const request = await write(sealing, plaintext);
    expect(request).toBe(serializePackage(await sealWith(sealing, plaintext)));
    const opened = await openRequestV2(JSON.parse(request), serverKey, binding);
    expect(Buffer.from(opened.plaintext)).toEqual(Buffer.from(plaintext));
    const answer = answerSealingV2(opened.answerKey, 'id-1', { processed_at: 1 });
    const text = await write(answer, plaintext);
    expect(text).toBe(serializePackage(await sealWith(answer, plaintext)));
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['version', 'algorithm', 'encrypted_payload', 'payload_algorithm', 'processed_at']);
    expect(Buffer.from(await openAnswerV2(JSON.parse(text), await answerKey, 'id-1'))).toEqual(Buffer.from(plaintext));
  });
});

describe('writeSealedPackageInPlace', () => {
  /** Seals `plaintext` placed as inPlaceRoom places it (for a plaintext of up to `size` bytes), junk everywhere else. */
  const writeInPlace = async (sealing: Sealing, plaintext: Uint8Array, size = plaintext.length) => {
    const { bytes, start } = inPlaceRoom(size);
    const buffer = new Uint8Array(randomBytes(bytes));
    buffer.set(plaintext, start);
    const length = (await writeSealedPackageInPlace(sealing, buffer, start, plaintext.length))!;
    // Nothing of the plaintext is left past the body.
    expect(buffer.subarray(length, Math.max(length, start + plaintext.length)).every((b) => b === 0)).toBe(true);
    return new TextDecoder().decode(buffer.subarray(0, length));
  };

  it('writes what writeSealedPackage writes, over its own plaintext, for every length around the pieces', async () => {
    for (const n of [0, 1, 2, 3, 49151, 49152, 49153, 98305, 200_000, 1_000_003]) {
      const plaintext = new Uint8Array(randomBytes(n)) as Bytes;
      const sealing = await v1Sealing(serverPublic, n % 2 ? { processed_at: 1765250382 } : undefined);
      const expected = serializePackage(await sealWith(sealing, plaintext));
      expect(await writeInPlace(sealing, plaintext)).toBe(expected);
      // A plaintext shorter than the room it was given (the JSON writer's estimate was generous).
      expect(await writeInPlace(sealing, plaintext, n + 4096)).toBe(expected);
    }
  });

  it('writes v2 answers in place that open', async () => {
    const plaintext = new Uint8Array(randomBytes(300_001)) as Bytes;
    const k = new Uint8Array(randomBytes(32)) as Bytes;
    const { sealing } = await requestSealingV2(k, serverPublic, { payloadId: 'id-2', tier: undefined });
    const opened = await openRequestV2(JSON.parse(await writeInPlace(sealing, plaintext)), serverKey, { payloadId: 'id-2', tier: undefined });
    expect(Buffer.from(opened.plaintext)).toEqual(Buffer.from(plaintext));
    const answer = answerSealingV2(opened.answerKey, 'id-2', { processed_at: 2 });
    const text = await writeInPlace(answer, plaintext);
    expect(text).toBe(serializePackage(await sealWith(answer, plaintext)));
  });

  it('writes nothing where the base64 would overtake the plaintext, or the buffer is too short', async () => {
    const plaintext = new Uint8Array(randomBytes(200_000)) as Bytes;
    const sealing = await v1Sealing(serverPublic);
    const head = serializePackage(await sealWith(sealing, new Uint8Array(0) as Bytes)).indexOf('"ciphertext":"') + 14;
    const fits = new Uint8Array(head + Math.ceil(plaintext.length / 3) + plaintext.length + 4096);
    const tight = Math.ceil(plaintext.length / 3) + head;
    for (const [buffer, start] of [[fits, tight - 1], [fits.subarray(0, 2000), 100]] as const) {
      buffer.fill(7);
      expect(await writeSealedPackageInPlace(sealing, buffer, start, Math.min(plaintext.length, buffer.length - start))).toBeUndefined();
      expect(buffer.every((b) => b === 7)).toBe(true);
    }
    fits.set(plaintext, tight);
    expect(await writeSealedPackageInPlace(sealing, fits, tight, plaintext.length)).toBeGreaterThan(0);
  });

  it('leaves room for the largest package around the plaintext: an RSA-16384 router key, v1, and v2', async () => {
    // Encrypting needs no primes: any odd 16384-bit modulus makes a public key that wraps (making a real one takes minutes).
    const modulus = new Uint8Array(randomBytes(2049));
    modulus[0] = 0;
    modulus[1]! |= 0x80;
    modulus[2048]! |= 1;
    const publicKey = await crypto.subtle.importKey('spki', rsaSpki(modulus, new Uint8Array([1, 0, 1])), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt', 'wrapKey']);
    const plaintext = new Uint8Array(randomBytes(1000)) as Bytes;
    for (const sealing of [await v1Sealing(publicKey, { processed_at: 1765250382 }), (await requestSealingV2(new Uint8Array(randomBytes(32)) as Bytes, publicKey, { payloadId: 'x'.repeat(128), tier: 'maximum' })).sealing]) {
      expect(await writeInPlace(sealing, plaintext)).toBe(serializePackage(await sealWith(sealing, plaintext)));
    }
  });
});

it('the in-place open took, declined and failed bodies in the comparisons above', () => {
  // Each of the three ways was taken: otherwise the comparisons checked less than they claim.
  expect(inPlaceCount.opened).toBeGreaterThan(0);
  expect(inPlaceCount.declined).toBeGreaterThan(0);
  expect(inPlaceCount.failed).toBeGreaterThan(0);
});
