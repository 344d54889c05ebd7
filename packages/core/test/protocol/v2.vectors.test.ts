/**
 * Protocol v2 against the shared vectors (made with Python `cryptography`): every valid answer opens
 * to its exact bytes with its request's K and payload id, every invalid one is refused; and what we
 * seal, an independent implementation on node:crypto (OpenSSL) opens, and the other way round.
 */
import { createCipheriv, createDecipheriv, createHash, constants, hkdfSync, privateDecrypt, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importRsaPrivateKey, importRsaPublicKey } from '../../src/crypto/rsa.js';
import { pemToDer } from '../../src/crypto/pem.js';
import { decodeBase64 } from '../../src/protocol/base64.js';
import { serializePackage } from '../../src/protocol/package.js';
import { deriveAnswerKey, openAnswerV2, openRequestV2, sealAnswerV2, sealRequestV2 } from '../../src/protocol/v2.js';
import { SecurityError } from '../../src/errors.js';
import { VECTORS_DIR, readVectorText } from '../helpers/vectors.js';

interface AnswerVector {
  file: string;
  description: string;
  payload_id: string;
  request_aes_key: string;
  package: unknown;
  plaintext_utf8?: string;
  plaintext_sha256?: string;
}

function readAnswers(kind: 'valid' | 'invalid'): AnswerVector[] {
  const dir = `${VECTORS_DIR}v2/answers/${kind}/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, ...(JSON.parse(readFileSync(dir + file, 'utf8')) as Omit<AnswerVector, 'file'>) }));
}

const k = (b64: string) => decodeBase64(b64) as Uint8Array<ArrayBuffer>;
const GENERIC = 'decryption failed: the package is not authentic or not for this key';

describe('shared vectors v2, answers', () => {
  const valid = readAnswers('valid');
  const invalid = readAnswers('invalid');

  it('has the vectors', () => {
    expect(valid.length).toBeGreaterThanOrEqual(3);
    expect(invalid.length).toBeGreaterThanOrEqual(8);
  });

  it.each(valid.map((v) => [v.file, v] as const))('%s opens to the exact bytes', async (_f, v) => {
    const bytes = await openAnswerV2(v.package, await deriveAnswerKey(k(v.request_aes_key), v.payload_id, 'decrypt'), v.payload_id);
    expect(new TextDecoder().decode(bytes)).toBe(v.plaintext_utf8);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(v.plaintext_sha256);
  });

  it.each(invalid.map((v) => [v.file, v] as const))('%s is refused with SecurityError', async (_f, v) => {
    const key = await deriveAnswerKey(k(v.request_aes_key), v.payload_id, 'decrypt');
    await expect(openAnswerV2(v.package, key, v.payload_id)).rejects.toBeInstanceOf(SecurityError);
  });

  it('crypto failures carry the one generic message (forged, swapped, unbound, wrong label, tampered)', async () => {
    const messages = new Set<string>();
    for (const name of ['answer-forged.json', 'answer-other-payload-id.json', 'answer-no-aad.json', 'answer-v1-info.json', 'answer-tampered-tag.json']) {
      const v = invalid.find((x) => x.file === name)!;
      const err = await openAnswerV2(v.package, await deriveAnswerKey(k(v.request_aes_key), v.payload_id, 'decrypt'), v.payload_id).catch((e: unknown) => e as Error);
      messages.add((err as Error).message);
    }
    expect([...messages]).toEqual([GENERIC]);
  });

  it('a valid answer does not open as another payload id, nor with another K', async () => {
    const v = valid[0]!;
    const otherId = await deriveAnswerKey(k(v.request_aes_key), 'another-id', 'decrypt');
    await expect(openAnswerV2(v.package, otherId, 'another-id')).rejects.toThrow(GENERIC);
    const otherK = await deriveAnswerKey(new Uint8Array(32), v.payload_id, 'decrypt');
    await expect(openAnswerV2(v.package, otherK, v.payload_id)).rejects.toThrow(GENERIC);
  });
});

describe('v2 against an independent implementation (node:crypto)', () => {
  const serverPem = readVectorText('v1/keys/server_4096.pem');
  const payloadId = '0d6f0b5e-7c1a-4c55-9d43-9b1f2d3e4a5b';
  const text = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Grüße 👋 "bound"' }] });

  it('opens what sealRequestV2 made, with request_aad exactly as the spec', async () => {
    const pub = await importRsaPublicKey(pemToDer(readVectorText('v1/keys/server_4096.pub.pem'), 'PUBLIC KEY'));
    const key = new Uint8Array(randomBytes(32));
    const sealed = await sealRequestV2(new TextEncoder().encode(text), new Uint8Array(key), pub, { payloadId, tier: 'maximum' });
    const pkg = JSON.parse(serializePackage(sealed.package));
    expect(Object.keys(pkg)).toEqual(['version', 'algorithm', 'encrypted_payload', 'encrypted_aes_key', 'key_algorithm', 'payload_algorithm']);
    expect(pkg.version).toBe('2.0');
    const raw = privateDecrypt({ key: serverPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(pkg.encrypted_aes_key, 'base64'));
    expect(raw.equals(Buffer.from(key))).toBe(true);
    const decipher = createDecipheriv('aes-256-gcm', raw, Buffer.from(pkg.encrypted_payload.nonce, 'base64'));
    decipher.setAAD(Buffer.from(`nomyo/2 request\n${payloadId}\nmaximum`, 'utf8'));
    decipher.setAuthTag(Buffer.from(pkg.encrypted_payload.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(pkg.encrypted_payload.ciphertext, 'base64')), decipher.final()]);
    expect(plain.toString('utf8')).toBe(text);

    // The answer an independent router seals with HKDF(K, payload id) opens with the key sealRequestV2 returned.
    const answerKey = Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), Buffer.from(`nomyo/2 answer key\n${payloadId}`), 32));
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', answerKey, nonce);
    cipher.setAAD(Buffer.from(`nomyo/2 answer\n${payloadId}`));
    const answerText = '{"choices":[{"message":{"role":"assistant","content":"ok"}}]}';
    const ct = Buffer.concat([cipher.update(answerText, 'utf8'), cipher.final()]);
    const answer = {
      version: '2.0',
      algorithm: 'aes256gcm-hkdf-sha256',
      encrypted_payload: { ciphertext: ct.toString('base64'), nonce: nonce.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
      payload_algorithm: 'AES-256-GCM',
    };
    expect(new TextDecoder().decode(await openAnswerV2(answer, await sealed.answerKey, payloadId))).toBe(answerText);
  });

  it('the router side: opens with the binding, and its answer opens independently', async () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(`nomyo/2 request\n${payloadId}\n`));
    const ct = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    const { publicEncrypt } = await import('node:crypto');
    const wrapped = publicEncrypt({ key: readVectorText('v1/keys/server_4096.pub.pem'), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key);
    const pkg = {
      version: '2.0',
      algorithm: 'hybrid-aes256-rsa4096',
      encrypted_payload: { ciphertext: ct.toString('base64'), nonce: nonce.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
      encrypted_aes_key: wrapped.toString('base64'),
      key_algorithm: 'RSA-OAEP-SHA256',
      payload_algorithm: 'AES-256-GCM',
    };
    const privateKey = await importRsaPrivateKey(pemToDer(serverPem, 'PRIVATE KEY'), false);
    await expect(openRequestV2(pkg, privateKey, { payloadId, tier: 'standard' })).rejects.toThrow(GENERIC);
    const { plaintext, answerKey } = await openRequestV2(pkg, privateKey, { payloadId, tier: undefined });
    expect(new TextDecoder().decode(plaintext)).toBe(text);
    // A router in a key rotation tries each key it accepts; none of them: the one generic failure.
    const other = (await crypto.subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['decrypt', 'encrypt'])).privateKey;
    expect(new TextDecoder().decode((await openRequestV2(pkg, [other, privateKey], { payloadId, tier: undefined })).plaintext)).toBe(text);
    await expect(openRequestV2(pkg, [other, other], { payloadId, tier: undefined })).rejects.toThrow(new SecurityError(GENERIC));

    const answer = JSON.parse(serializePackage(await sealAnswerV2(new TextEncoder().encode('{"a":1}'), answerKey, payloadId, { processed_at: 7 })));
    expect(Object.keys(answer)).toEqual(['version', 'algorithm', 'encrypted_payload', 'payload_algorithm', 'processed_at']);
    const ak = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), Buffer.from(`nomyo/2 answer key\n${payloadId}`), 32));
    const decipher = createDecipheriv('aes-256-gcm', ak, Buffer.from(answer.encrypted_payload.nonce, 'base64'));
    decipher.setAAD(Buffer.from(`nomyo/2 answer\n${payloadId}`));
    decipher.setAuthTag(Buffer.from(answer.encrypted_payload.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(answer.encrypted_payload.ciphertext, 'base64')), decipher.final()]);
    expect(plain.toString('utf8')).toBe('{"a":1}');
  });
});
