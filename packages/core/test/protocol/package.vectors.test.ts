import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { importRsaPrivateKey, importRsaPublicKey } from '../../src/crypto/rsa.js';
import { pemToDer } from '../../src/crypto/pem.js';
import { openPackage, sealPackage } from '../../src/protocol/package.js';
import { SecurityError } from '../../src/errors.js';
import { readVectors, readVectorText } from '../helpers/vectors.js';

const privateKey = (path: string) => importRsaPrivateKey(pemToDer(readVectorText(`v1/${path}`), 'PRIVATE KEY'), false);

describe('shared vectors v1', () => {
  const valid = readVectors('valid');
  const invalid = readVectors('invalid');

  it('has the vectors', () => {
    expect(valid.length).toBeGreaterThanOrEqual(8);
    expect(invalid.length).toBeGreaterThanOrEqual(12);
  });

  it.each(valid.map((v) => [v.file, v] as const))('%s opens to the expected bytes', async (_f, v) => {
    const bytes = await openPackage(v.package, await privateKey(v.private_key));
    expect(new TextDecoder().decode(bytes)).toBe(v.plaintext_utf8);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(v.plaintext_sha256);
  });

  it.each(invalid.map((v) => [v.file, v] as const))('%s is refused with SecurityError', async (_f, v) => {
    const key = await privateKey(v.private_key);
    await expect(openPackage(v.package, key)).rejects.toBeInstanceOf(SecurityError);
  });

  it('crypto failures carry one generic message, whatever failed', async () => {
    const messages = new Set<string>();
    for (const name of ['tampered-ciphertext.json', 'tampered-tag.json', 'tampered-nonce.json', 'wrong-recipient.json', 'oaep-sha1.json', 'aes-128-key.json']) {
      const v = invalid.find((x) => x.file === name)!;
      const err = await openPackage(v.package, await privateKey(v.private_key)).catch((e: unknown) => e as Error);
      messages.add((err as Error).message);
    }
    expect([...messages]).toEqual(['decryption failed: the package is not authentic or not for this key']);
  });

  it('what we seal, another key holder opens (round trip through the vector keys)', async () => {
    const pub = await importRsaPublicKey(pemToDer(readVectorText('v1/keys/server_4096.pub.pem'), 'PUBLIC KEY'));
    const plaintext = new TextEncoder().encode('{"model":"m","messages":[]}');
    const pkg = await sealPackage(plaintext, pub);
    expect(Object.keys(pkg)).toEqual(['version', 'algorithm', 'encrypted_payload', 'encrypted_aes_key', 'key_algorithm', 'payload_algorithm']);
    const opened = await openPackage(pkg, await privateKey('keys/server_4096.pem'));
    expect(new TextDecoder().decode(opened)).toBe('{"model":"m","messages":[]}');
  });
});

describe('an independent opener (OpenSSL through node:crypto)', () => {
  it('opens what sealPackage made and serializePackage wrote', async () => {
    const { privateDecrypt, createDecipheriv, constants } = await import('node:crypto');
    const { serializePackage } = await import('../../src/protocol/package.js');
    const pub = await importRsaPublicKey(pemToDer(readVectorText('v1/keys/server_4096.pub.pem'), 'PUBLIC KEY'));
    const text = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Grüße 👋 "quoted"' }] });
    const body = serializePackage(await sealPackage(new TextEncoder().encode(text), pub, { processed_at: 1765250382 }));
    const pkg = JSON.parse(body);
    const aesKey = privateDecrypt(
      { key: readVectorText('v1/keys/server_4096.pem'), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(pkg.encrypted_aes_key, 'base64'),
    );
    expect(aesKey).toHaveLength(32);
    const decipher = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(pkg.encrypted_payload.nonce, 'base64'));
    decipher.setAuthTag(Buffer.from(pkg.encrypted_payload.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(pkg.encrypted_payload.ciphertext, 'base64')), decipher.final()]);
    expect(plain.toString('utf8')).toBe(text);
    expect(pkg.processed_at).toBe(1765250382);
    expect(Buffer.from(pkg.encrypted_payload.nonce, 'base64')).toHaveLength(12);
  });
});
