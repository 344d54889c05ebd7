/**
 * Strict standard base64 (RFC 4648 section 4, with padding), as the protocol requires.
 * Decoding refuses any other alphabet, whitespace, missing padding and non-zero pad bits,
 * and writes straight into a caller's buffer so large ciphertexts are not copied twice.
 *
 * Uses the fastest codec the runtime has, found by feature detection: the ES2026
 * `Uint8Array` base64 methods, else Node's `Buffer` global, else a portable fallback.
 */
import { SecurityError } from '../errors.js';
import { NodeBuffer, bufferView } from '../node-buffer.js';

interface NativeBase64 {
  toBase64?: () => string;
  setFromBase64?: (s: string) => { read: number; written: number };
}
const hasNativeEncode = typeof (Uint8Array.prototype as NativeBase64).toBase64 === 'function';
const hasNativeDecode = typeof (Uint8Array.prototype as NativeBase64).setFromBase64 === 'function';

/** The standard base64 alphabet (RFC 4648 section 4), shared with base64-bytes.ts. */
export const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The one error for any base64 the protocol does not allow (shared with base64-bytes.ts). */
export function invalid(): SecurityError {
  return new SecurityError('malformed package: invalid base64');
}

/** Encodes bytes as standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  if (hasNativeEncode) return (bytes as NativeBase64).toBase64!();
  if (NodeBuffer) return bufferView(bytes).toString('base64');
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * The number of bytes `text` decodes to, after checking its length and padding (the alphabet is
 * checked while decoding, see {@link decodeBase64Into}).
 * @throws SecurityError when it is not well formed.
 */
export function decodedLength(text: string): number {
  const n = text.length;
  if (n % 4 !== 0) throw invalid();
  if (n === 0) return 0;
  const firstPad = text.indexOf('=');
  let pad = 0;
  if (firstPad !== -1) {
    pad = n - firstPad;
    if (pad > 2 || (pad === 2 && text[n - 1] !== '=')) throw invalid();
    // Canonical form: the bits that padding leaves over must be zero.
    const last = ALPHABET.indexOf(text[n - pad - 1]!);
    if ((pad === 1 && (last & 0x03) !== 0) || (pad === 2 && (last & 0x0f) !== 0)) throw invalid();
  }
  return (n / 4) * 3 - pad;
}

/**
 * Decodes strict base64 into `target` (which must have room for {@link decodedLength} bytes).
 * @returns the number of bytes written.
 */
export function decodeBase64Into(text: string, target: Uint8Array): number {
  const length = decodedLength(text);
  if (target.length < length) throw new RangeError('base64 target too small');
  // Every decoder below skips what it does not accept (whitespace at least), so one character
  // outside the alphabet means fewer bytes than the length promised: that count is the check.
  // A regular expression over the text would cost more than the decoding itself at 10 MiB.
  let written: number;
  if (hasNativeDecode) {
    try {
      written = (target.subarray(0, length) as NativeBase64).setFromBase64!(text).written;
    } catch {
      throw invalid();
    }
  } else if (NodeBuffer) {
    // Node's decoder also takes the base64url characters, and reads only the low byte of
    // characters above U+00FF ('Ł' decodes as 'A'): allow only ASCII and the standard alphabet.
    if (NodeBuffer.byteLength(text, 'utf8') !== text.length || text.includes('-') || text.includes('_')) throw invalid();
    written = bufferView(target, 0, length).write(text, 0, 'base64');
  } else {
    let binary: string;
    try {
      binary = atob(text);
    } catch {
      throw invalid();
    }
    written = binary.length;
    for (let i = 0; i < length; i++) target[i] = binary.charCodeAt(i);
  }
  if (written !== length) throw invalid();
  return length;
}

/** Decodes strict base64 into a new array. */
export function decodeBase64(text: string): Uint8Array {
  const out = new Uint8Array(decodedLength(text));
  decodeBase64Into(text, out);
  return out;
}
