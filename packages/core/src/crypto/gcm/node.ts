/**
 * `#gcm` in Node.js: node:crypto's AES-256-GCM, which takes the payload in pieces. A 10 MiB request
 * then needs no 10 MiB ciphertext buffer, nor the copy of its input Web Crypto makes before working
 * (about 20 MiB less on each side of a round trip). The keys core makes from bytes (importKey: `K`,
 * and those HKDF derives) are node:crypto KeyObjects from the start (NodeAesKey). A CryptoKey (v1's,
 * a caller's) is handed to node:crypto with KeyObject.from, the same key without its bytes ever
 * reaching JavaScript. That takes only extractable keys, as core makes them here
 * (PAYLOAD_KEYS_EXTRACTABLE): a non-extractable one would print a deprecation warning (Node.js 24)
 * or throw (later). Such a key goes to Web Crypto as in browser.ts, and so does everything where
 * node:crypto lacks a piece (other runtimes that respond to the "node" condition).
 */
import { Buffer } from 'node:buffer';
import * as nodeCrypto from 'node:crypto';
import { GCM_TAG_BYTES } from '../../protocol/constants.js';
import { decryptionFailed } from '../rsa.js';
import type { Bytes } from '../subtle.js';
import { makeAhead, takeAhead, type AheadCipher } from './ahead.js';
import { webCryptoGcm } from './browser.js';
import { GCM_PIECE_BYTES, isNodeAesKey, type AesKey, type GcmPieces } from './types.js';

const ALGORITHM = 'aes-256-gcm';

const usable =
  typeof nodeCrypto.KeyObject?.from === 'function' &&
  typeof nodeCrypto.createSecretKey === 'function' &&
  typeof nodeCrypto.createCipheriv === 'function' &&
  typeof nodeCrypto.createDecipheriv === 'function';

/**
 * node:crypto's cipher for `key` (ours, or a CryptoKey handed over without its bytes), its `aad`
 * given, or undefined for a CryptoKey where this runtime cannot make one: then Web Crypto does the
 * work, as in browser.ts. Our own key works here or nowhere: it throws. `nonce` is the protocol's
 * size, checked before.
 */
function nodeCipher(kind: 'encrypt', key: AesKey, nonce: Bytes, aad: Bytes | undefined): nodeCrypto.CipherGCM | undefined;
function nodeCipher(kind: 'decrypt', key: AesKey, nonce: Bytes, aad: Bytes | undefined): nodeCrypto.DecipherGCM | undefined;
function nodeCipher(kind: 'encrypt' | 'decrypt', key: AesKey, nonce: Bytes, aad: Bytes | undefined): AheadCipher | undefined;
function nodeCipher(kind: 'encrypt' | 'decrypt', key: AesKey, nonce: Bytes, aad: Bytes | undefined): AheadCipher | undefined {
  if (isNodeAesKey(key)) {
    if (key.usage !== kind) throw new TypeError(`an AES-GCM key made to ${key.usage} cannot ${kind}`);
    return withAad(makeCipher(kind, key.handle as nodeCrypto.KeyObject, nonce), aad);
  }
  if (!usable || !key.extractable || !key.usages.includes(kind) || key.algorithm.name !== 'AES-GCM' || (key.algorithm as AesKeyAlgorithm).length !== 256) return undefined;
  let cipher: AheadCipher;
  try {
    cipher = makeCipher(kind, keyObject(key), nonce);
  } catch {
    return undefined;
  }
  return withAad(cipher, aad);
}

function makeCipher(kind: 'encrypt' | 'decrypt', handle: nodeCrypto.KeyObject, nonce: Bytes): AheadCipher {
  const options = { authTagLength: GCM_TAG_BYTES };
  return kind === 'encrypt' ? nodeCrypto.createCipheriv(ALGORITHM, handle, nonce, options) : nodeCrypto.createDecipheriv(ALGORITHM, handle, nonce, options);
}

function withAad(cipher: AheadCipher, aad: Bytes | undefined): AheadCipher {
  if (aad) cipher.setAAD(aad);
  return cipher;
}

/**
 * node:crypto's `update` writes into a block one byte longer than its input (the cipher's block size,
 * 1 for GCM), copies the output into a block of its exact length and frees the first unzeroed: each
 * piece's plaintext was left in freed memory (a whole answer's, 48 KiB at a time; each record's).
 * The next block of that size asked of malloc is the one just freed (malloc's, not calloc's, which
 * passes by the small ones), so taking it at once and zeroing it overwrites the plaintext.
 */
function overwriteFreedPlaintext(pieceLength: number): void {
  Buffer.allocUnsafeSlow(pieceLength + 1).fill(0);
}

/** Each key handed to node:crypto once: a stream's records, hundreds a second, share one key. */
const handles = new WeakMap<CryptoKey, nodeCrypto.KeyObject>();

function keyObject(key: CryptoKey): nodeCrypto.KeyObject {
  let handle = handles.get(key);
  if (!handle) handles.set(key, (handle = nodeCrypto.KeyObject.from(key)));
  return handle;
}

const streamingGcm: GcmPieces = {
  streaming: true,

  async importKey(raw, usage) {
    // createSecretKey copies the bytes into the key.
    return { usage, handle: nodeCrypto.createSecretKey(raw) };
  },

  async seal(key, nonce, aad, plaintext, sink) {
    const cipher = (takeAhead('encrypt', key, nonce, aad) as nodeCrypto.CipherGCM | undefined) ?? nodeCipher('encrypt', key, nonce, aad);
    if (!cipher) return webCryptoGcm.seal(key, nonce, aad, plaintext, sink);
    for (let i = 0; i < plaintext.length; i += GCM_PIECE_BYTES) {
      const piece = cipher.update(plaintext.subarray(i, Math.min(i + GCM_PIECE_BYTES, plaintext.length)));
      // GCM is a stream cipher: what goes in comes out at once, byte for byte.
      if (piece.length !== Math.min(GCM_PIECE_BYTES, plaintext.length - i)) throw new Error('AES-GCM returned a short piece');
      sink(piece);
    }
    cipher.final();
    return new Uint8Array(cipher.getAuthTag()) as Bytes;
  },

  ahead(kind, key, next) {
    makeAhead(kind, key, next, nodeCipher);
  },

  async open(key, nonce, aad, tag, ciphertextLength, feed, target) {
    if (tag.length !== GCM_TAG_BYTES) throw decryptionFailed();
    let decipher: nodeCrypto.DecipherGCM | undefined;
    try {
      decipher = (takeAhead('decrypt', key, nonce, aad) as nodeCrypto.DecipherGCM | undefined) ?? nodeCipher('decrypt', key, nonce, aad);
      decipher?.setAuthTag(tag);
    } catch {
      throw decryptionFailed();
    }
    if (!decipher) return intoTarget(await webCryptoGcm.open(key, nonce, aad, tag, ciphertextLength, feed, target), target);
    if (target.length < ciphertextLength) throw new RangeError('plaintext target too small');
    let written = 0;
    try {
      // What `feed` throws (bad base64) passes through; anything from the cipher (a wrong tag, an
      // unusable key) is the one opaque error, as with Web Crypto.
      feed((piece) => {
        if (written + piece.length > ciphertextLength) throw new RangeError('ciphertext length mismatch');
        let plain: Buffer;
        try {
          plain = decipher.update(piece);
        } catch {
          throw decryptionFailed();
        }
        overwriteFreedPlaintext(piece.length);
        target.set(plain, written);
        written += plain.length;
        plain.fill(0);
      });
      if (written !== ciphertextLength) throw new RangeError('ciphertext length mismatch');
      try {
        decipher.final();
      } catch {
        throw decryptionFailed();
      }
      return written === target.length ? target : target.subarray(0, written);
    } catch (err) {
      // Nothing unauthenticated stays behind.
      target.fill(0, 0, written);
      throw err;
    }
  },
};

export const gcmPieces: GcmPieces = usable ? streamingGcm : webCryptoGcm;

/**
 * A key node:crypto cannot take (a caller's non-extractable CryptoKey) is opened by Web Crypto, into
 * a buffer of its own: copied into `target`, as this implementation promises its callers (it
 * streams), and zeroed. Web Crypto has read all of the ciphertext by then: `target` may be where it was.
 */
function intoTarget(plaintext: Uint8Array, target: Uint8Array): Uint8Array {
  try {
    if (target.length < plaintext.length) throw new RangeError('plaintext target too small');
    target.set(plaintext);
    return plaintext.length === target.length ? target : target.subarray(0, plaintext.length);
  } finally {
    plaintext.fill(0);
  }
}
