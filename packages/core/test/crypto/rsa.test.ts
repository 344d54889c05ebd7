/**
 * WebKitGTK's RSA-OAEP drops a message's leading zero bytes, so an AES key that starts with 0x00
 * comes out of unwrapKey short (one key in 256). There, and only there, unwrapAesKey puts the zeros
 * back (tests/browser runs that case in WebKit itself, and refuses it in the other engines). Node.js
 * keeps messages whole: a sealed key that is not exactly 32 bytes is refused after one RSA operation.
 * The packages are built by OpenSSL (node:crypto), as a router builds them.
 */
import { createCipheriv, publicEncrypt, constants, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { importRsaPrivateKey } from '../../src/crypto/rsa.js';
import { pemToDer } from '../../src/crypto/pem.js';
import { subtle } from '../../src/crypto/subtle.js';
import { encodeBase64 } from '../../src/protocol/base64.js';
import { openPackage } from '../../src/protocol/package.js';
import { SecurityError } from '../../src/errors.js';
import { readVectorText } from '../helpers/vectors.js';

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

/** RSA private-key operations on `key` while `run` runs: unwrapKey and decrypt calls with it. */
async function rsaOperations(key: CryptoKey, run: () => Promise<unknown>): Promise<number> {
  const unwrap = vi.spyOn(subtle(), 'unwrapKey');
  const decrypt = vi.spyOn(subtle(), 'decrypt');
  try {
    await run();
    return [...unwrap.mock.calls.map((c) => c[2]), ...decrypt.mock.calls.map((c) => c[1])].filter((k) => k === key).length;
  } finally {
    vi.restoreAllMocks();
  }
}

describe('an AES key whose leading zero bytes are missing', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a whole 32-byte key that starts with zeros opens, with one RSA operation', async () => {
    const key = await privateKey();
    for (const zeros of [1, 2]) {
      let opened: Uint8Array | undefined;
      expect(await rsaOperations(key, async () => (opened = await openPackage(packageWithKey(zeros, 32), key)))).toBe(1);
      expect(new TextDecoder().decode(opened)).toBe(PLAINTEXT);
    }
  });

  it.each([
    ['one zero missing (31 bytes sealed)', 1, 31],
    ['two zeros missing (30 bytes sealed)', 2, 30],
    ['three bytes short', 3, 29],
    ['a 16-byte key', 16, 16],
  ])('%s: refused with the generic error after one RSA operation (Node.js keeps messages whole)', async (_name, zeros, sealed) => {
    const key = await privateKey();
    // The engine is probed on the first failure, once per process (with a throwaway key of its own).
    await openPackage(packageWithKey(zeros, sealed), key).catch(() => undefined);
    let err: unknown;
    const operations = await rsaOperations(key, async () => (err = await openPackage(packageWithKey(zeros, sealed), key).catch((e: unknown) => e)));
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toBe('decryption failed: the package is not authentic or not for this key');
    expect(operations).toBe(1);
  });
});
