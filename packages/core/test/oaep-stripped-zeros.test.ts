/**
 * WebKitGTK's RSA-OAEP drops a message's leading zero bytes, so an AES key that starts with 0x00
 * comes out of unwrapKey short (one key in 256). openPackage puts the zeros back; these packages
 * are built by OpenSSL (node:crypto) with a key that had its zeros stripped before sealing, which
 * is what such an engine hands back. tests/browser runs the same case in WebKit itself.
 */
import { createCipheriv, publicEncrypt, constants, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { importRsaPrivateKey } from '../src/crypto/rsa.js';
import { pemToDer } from '../src/crypto/pem.js';
import { encodeBase64 } from '../src/protocol/base64.js';
import { openPackage } from '../src/protocol/package.js';
import { SecurityError } from '../src/errors.js';
import { readVectorText } from './helpers/vectors.js';

const PLAINTEXT = '{"id":"x","object":"chat.completion"}';

/** A v1 package whose AES key starts with `zeros` zero bytes; `sealed` is the part of the key RSA-sealed. */
function packageWithKey(zeros: number, sealedLength: number) {
  const key = Buffer.concat([Buffer.alloc(zeros), randomBytes(32 - zeros)]);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const ciphertext = Buffer.concat([cipher.update(PLAINTEXT, 'utf8'), cipher.final()]);
  const publicKey = readVectorText('v1/keys/client_4096.pub.pem');
  const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key.subarray(32 - sealedLength));
  return {
    version: '1.0',
    algorithm: 'hybrid-aes256-rsa4096',
    encrypted_payload: { ciphertext: encodeBase64(ciphertext), nonce: encodeBase64(nonce), tag: encodeBase64(cipher.getAuthTag()) },
    encrypted_aes_key: encodeBase64(wrapped),
    key_algorithm: 'RSA-OAEP-SHA256',
    payload_algorithm: 'AES-256-GCM',
  };
}

const privateKey = () => importRsaPrivateKey(pemToDer(readVectorText('v1/keys/client_4096.pem'), 'PRIVATE KEY'), false);

describe('an AES key whose leading zero bytes the RSA layer dropped', () => {
  it.each([
    ['a whole 32-byte key that starts with a zero', 1, 32],
    ['one zero dropped (31 bytes sealed)', 1, 31],
    ['two zeros dropped (30 bytes sealed)', 2, 30],
  ])('%s opens', async (_name, zeros, sealed) => {
    const opened = await openPackage(packageWithKey(zeros, sealed), await privateKey());
    expect(new TextDecoder().decode(opened)).toBe(PLAINTEXT);
  });

  it.each([
    ['three bytes short', 3, 29],
    ['a 16-byte key', 16, 16],
  ])('%s is refused with the generic error', async (_name, zeros, sealed) => {
    const err = await openPackage(packageWithKey(zeros, sealed), await privateKey()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toBe('decryption failed: the package is not authentic or not for this key');
  });
});
