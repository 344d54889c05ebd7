/** Packages written as bytes: byte for byte what serializePackage writes, in a buffer of their own or in place over their plaintext. */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { importRsaPrivateKey, importRsaPublicKey } from '../../../src/crypto/rsa.js';
import { pemToDer } from '../../../src/crypto/pem.js';
import { rsaSpki } from '../../../src/crypto/rsa-der.js';
import type { Bytes } from '../../../src/crypto/subtle.js';
import { head, owned } from '../../../src/memory/owned-bytes.js';
import { inPlaceRoom } from '../../../src/protocol/body/layout.js';
import { writeSealedPackage, writeSealedPackageInPlace } from '../../../src/protocol/body/write.js';
import { sealWith, serializePackage, v1Sealing, type Sealing } from '../../../src/protocol/package.js';
import { answerSealingV2, openAnswerV2, openRequestV2, requestSealingV2 } from '../../../src/protocol/v2.js';
import { readVectorText } from '../../helpers/vectors.js';

let serverKey: CryptoKey;
let serverPublic: CryptoKey;

beforeAll(async () => {
  serverKey = await importRsaPrivateKey(pemToDer(readVectorText('v1/keys/server_4096.pem'), 'PRIVATE KEY'), false);
  serverPublic = await importRsaPublicKey(pemToDer(readVectorText('v1/keys/server_4096.pub.pem'), 'PUBLIC KEY'));
});

describe('writeSealedPackage', () => {
  const write = async (sealing: Sealing, plaintext: Uint8Array) => {
    // A source that gives more than asked: the body is the bytes written, not the buffer.
    const out = await writeSealedPackage(sealing, plaintext, { secure: false, take: (size) => head(owned(new Uint8Array(size + 5), false, () => {}), size + 5) });
    return new TextDecoder().decode(out.bytes);
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

