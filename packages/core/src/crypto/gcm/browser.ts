/** `#gcm` outside Node.js: Web Crypto, which takes and gives whole buffers (see types.ts). */
import { aesGcmOpen, aesGcmSeal, importWebAesKey } from '../aes-gcm.js';
import { GCM_TAG_BYTES } from '../../protocol/constants.js';
import type { Bytes } from '../subtle.js';
import { GCM_PIECE_BYTES, webCryptoKey, type GcmPieces, type PieceSink } from './types.js';

export const webCryptoGcm: GcmPieces = {
  streaming: false,

  importKey: importWebAesKey,

  async seal(key, nonce, aad, plaintext, sink) {
    const { sealed } = await aesGcmSeal(webCryptoKey(key), plaintext as Bytes, aad, nonce);
    const ctLength = sealed.length - GCM_TAG_BYTES;
    for (let i = 0; i < ctLength; i += GCM_PIECE_BYTES) sink(sealed.subarray(i, Math.min(i + GCM_PIECE_BYTES, ctLength)));
    return sealed.slice(ctLength);
  },

  async open(key, nonce, aad, tag, ciphertextLength, feed: (sink: PieceSink) => void) {
    // Web Crypto wants ciphertext||tag in one buffer.
    const sealed = new Uint8Array(ciphertextLength + GCM_TAG_BYTES);
    let at = 0;
    feed((piece) => {
      sealed.set(piece, at);
      at += piece.length;
    });
    if (at !== ciphertextLength) throw new RangeError('ciphertext length mismatch');
    sealed.set(tag, ciphertextLength);
    return aesGcmOpen(webCryptoKey(key), nonce, sealed, aad);
  },
};

export const gcmPieces: GcmPieces = webCryptoGcm;
