/**
 * JSON strings on UTF-8 bytes, for json-bytes.ts: what kinds of byte a long literal read holds, and
 * whether a slice of a long string written has anything JSON.stringify escapes (if so, json-bytes.ts
 * writes that slice's JSON.stringify instead), and whether it is well-formed UTF-16.
 */
import { NodeBuffer } from '../node-buffer.js';

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;

type IndexOf = (bytes: Uint8Array, value: number, from: number) => number;
/** Node's Buffer#indexOf is memchr, ten times the speed of TypedArray#indexOf. */
const bufferIndexOf = NodeBuffer?.prototype.indexOf;
export const indexOf: IndexOf = bufferIndexOf
  ? (bytes, value, from) => bufferIndexOf.call(bytes, value, from)
  : (bytes, value, from) => bytes.indexOf(value, from);

// ---- reading ----

/** In {@link byteKinds}: a byte below 0x20, which a JSON string may not hold raw. */
export const CONTROL_BYTE = 1;
/** In {@link byteKinds}: a byte of 0x80 or above (part of a non-ASCII character, or not UTF-8). */
export const NON_ASCII_BYTE = 2;

/**
 * Which kinds of byte `bytes[start, end)` holds: {@link CONTROL_BYTE}, {@link NON_ASCII_BYTE}, both
 * or neither (0: printable ASCII only), in one pass, four bytes at a time.
 */
export function byteKinds(bytes: Uint8Array, start: number, end: number): number {
  let low = 0; // a byte's top bit set: a byte below 0x20
  let high = 0; // a byte's top bit set: a byte of 0x80 or above
  let i = start;
  const aligned = Math.min(end, start + ((4 - ((bytes.byteOffset + start) & 3)) & 3));
  for (; i < aligned; i++) {
    if (bytes[i]! < 0x20) low |= 0x80;
    high |= bytes[i]!;
  }
  const words = (end - i) >> 2;
  if (words > 0) {
    const w32 = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const w = w32[k]!;
      // A byte below 0x20 sets its top bit in (w - 0x20202020) & ~w (exact for the word as a whole, for thresholds up to 0x80).
      low |= (w - 0x20202020) & ~w;
      high |= w;
    }
    i += words * 4;
  }
  for (; i < end; i++) {
    if (bytes[i]! < 0x20) low |= 0x80;
    high |= bytes[i]!;
  }
  return ((low & 0x80808080) !== 0 ? CONTROL_BYTE : 0) | ((high & 0x80808080) !== 0 ? NON_ASCII_BYTE : 0);
}

// ---- writing ----

/** Whether byte `c` is one JSON.stringify escapes inside a string: below 0x20, `"` or `\`. */
function escapable(c: number): boolean {
  return c < 0x20 || c === QUOTE || c === BACKSLASH;
}

/**
 * Whether `bytes[start, end)` (a string's UTF-8) holds a byte JSON.stringify escapes, four bytes at
 * a time: a word holding none (almost all of them, in prose) costs three subtractions. Bytes of
 * multi-byte characters are all 0x80 and above, so none is ever taken for one of these.
 */
export function hasEscapable(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  const aligned = Math.min(end, start + ((4 - ((bytes.byteOffset + start) & 3)) & 3));
  for (; i < aligned; i++) if (escapable(bytes[i]!)) return true;
  const words = (end - i) >> 2;
  if (words > 0) {
    const w32 = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const w = w32[k]!;
      const q = w ^ 0x22222222;
      const b = w ^ 0x5c5c5c5c;
      // A byte below 0x20, or one equal to 0x22 or 0x5c (a zero byte in q or b), sets a top bit here
      // (exact as a test of the whole word).
      if ((((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((b - 0x01010101) & ~b)) & 0x80808080) return true;
    }
    i += words * 4;
  }
  for (; i < end; i++) if (escapable(bytes[i]!)) return true;
  return false;
}

/** U+FFFD in UTF-8: what TextEncoder writes for a lone surrogate (and for U+FFFD itself). */
function hasReplacementCharacter(utf8: Uint8Array): boolean {
  for (let i = indexOf(utf8, 0xef, 0); i !== -1 && i + 2 < utf8.length; i = indexOf(utf8, 0xef, i + 1)) {
    if (utf8[i + 1] === 0xbf && utf8[i + 2] === 0xbd) return true;
  }
  return false;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** `isWellFormed` where the runtime lacks it. @internal */
export function wellFormedPortable(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * False if `text` has a lone surrogate (JSON.stringify escapes it; UTF-8 cannot hold it). The
 * runtime's isWellFormed where there is one: at once for a one-byte string, a quick scan for others
 * (0.5 ms for 5 MiB of Chinese, where a search of the UTF-8 for U+FFFD takes 1.4 ms on Node.js 20
 * and 4.3 ms on 24, one indexOf per full-width punctuation mark). Without it, `utf8` (what
 * encodeInto wrote for `text`) spares the regex when it holds no U+FFFD.
 */
export function wellFormed(text: string, utf8?: Uint8Array): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (native) return native.call(text);
  return (utf8 !== undefined && !hasReplacementCharacter(utf8)) || wellFormedPortable(text);
}
