/**
 * AES-256-GCM in pieces, so a large payload goes between the plaintext and the base64 of the package
 * without a whole-size ciphertext buffer (`#gcm`: node.ts where node:crypto streams, browser.ts, which
 * is Web Crypto in one call, everywhere else). Same cipher, parameters and failures as ../aes-gcm.ts.
 */
import { inNode } from '../../env.js';
import type { Bytes } from '../subtle.js';

/**
 * Whether the payload's AES-GCM keys are made extractable: where the runtime presents itself as
 * Node.js, as `#gcm` is loaded (select.ts; workerd with nodejs_compat too, though its `#gcm` is
 * browser.ts). In node.ts node:crypto's cipher takes the key as a KeyObject, and KeyObject.from of
 * a non-extractable CryptoKey is deprecated (DEP0204: a warning on stderr from Node.js 24, an error
 * later). A KeyObject can always be exported, so non-extractable protected nothing there; the keys
 * never leave core's modules, and their bytes never enter JavaScript (nothing exports them).
 * Browsers keep them non-extractable.
 */
export const PAYLOAD_KEYS_EXTRACTABLE = inNode();

/**
 * node.ts's own AES-256-GCM key: node:crypto's KeyObject, made from the key's bytes at once, for one
 * usage. Web Crypto's importKey takes a process back from idle 0.28 ms, where this takes 0.05, and
 * a key is made on the way to a v2 answer's first token on both sides (docs/performance.md).
 */
export interface NodeAesKey {
  /** What the key may do: node.ts refuses it for the other. */
  readonly usage: 'encrypt' | 'decrypt';
  /** The KeyObject (typed loosely: these types are shared with browsers). */
  readonly handle: object;
}

/**
 * An AES-256-GCM key as `#gcm` takes it: a CryptoKey, or in Node.js the key node.ts made from the
 * key's bytes (its `importKey`). Either way its bytes are not in JavaScript once made.
 */
export type AesKey = CryptoKey | NodeAesKey;

/** Whether `key` is node.ts's own (not a CryptoKey). */
export function isNodeAesKey(key: AesKey): key is NodeAesKey {
  return 'handle' in key;
}

/** `key` for Web Crypto, which takes its own keys only: node.ts makes its own only where it does the work. */
export function webCryptoKey(key: AesKey): CryptoKey {
  if (isNodeAesKey(key)) throw new TypeError('a node:crypto key cannot go to Web Crypto');
  return key;
}

/** Plaintext is taken in pieces of this many bytes (a multiple of 3, so ciphertext pieces are too). */
export const GCM_PIECE_BYTES = 3 * 16384;

/** Receives ciphertext (sealing) or plaintext (opening) in order; a piece is only valid during the call. */
export type PieceSink = (piece: Uint8Array) => void;

export interface GcmPieces {
  /** True when this implementation streams (no whole-size buffer of its own). */
  readonly streaming: boolean;
  /**
   * The 32 bytes `raw` as an AES-256-GCM key for `usage`, made the quickest way this implementation
   * can take (node.ts: a KeyObject, see {@link NodeAesKey}; browser.ts: Web Crypto's importKey). The
   * bytes are copied: the caller zeroes its own.
   */
  importKey(raw: Bytes, usage: 'encrypt' | 'decrypt'): Promise<AesKey>;
  /**
   * Seals `plaintext` with `key` (AES-256-GCM, usage 'encrypt'), 96-bit `nonce`, optional `aad`. The
   * ciphertext goes to `sink` in pieces, each but the last a multiple of 3 bytes (so their base64 can
   * be written one after the other). Returns the 16-byte tag.
   */
  seal(key: AesKey, nonce: Bytes, aad: Bytes | undefined, plaintext: Uint8Array, sink: PieceSink): Promise<Bytes>;
  /**
   * Opens `ciphertextLength` bytes of ciphertext, which `feed` hands over in order (it may throw, e.g.
   * on bad base64: the error passes through). Streaming implementations write the plaintext into
   * `target` at 0 and return that view; the other one returns Web Crypto's own buffer. Either way the
   * caller zeroes what is returned. On any failure nothing is returned and what was written is zeroed;
   * a tag that does not match is the one opaque SecurityError of ../rsa.ts.
   */
  open(
    key: AesKey,
    nonce: Bytes,
    aad: Bytes | undefined,
    tag: Bytes,
    ciphertextLength: number,
    feed: (sink: PieceSink) => void,
    target: Uint8Array,
  ): Promise<Uint8Array>;
  /**
   * Says which call under `key` is expected next (`next` gives its nonce and AAD, and is asked only
   * when the cipher is made), so that its cipher can be made off that call's path: node.ts, where a
   * cipher's setup is half of a small record's time in a process back from idle (ahead.ts). Absent
   * where there is nothing to make ahead; a call that is not the one expected makes its own cipher.
   */
  ahead?(kind: 'encrypt' | 'decrypt', key: AesKey, next: () => { readonly nonce: Bytes; readonly aad: Bytes }): void;
}
