/**
 * JSON strings on UTF-8 bytes, for json-bytes.ts: what kinds of byte a long literal read holds, and
 * the escapes of a long string written, made in place (each byte JSON.stringify escapes becomes its
 * escape, the rest moved right). Text such as a letter has a line break or a quote every few dozen
 * bytes: done a string slice at a time through JSON.stringify, that cost more than the encoding.
 *
 * Exact: only what JSON.stringify itself does; what is not handled here (a lone surrogate) is left
 * to json-bytes.ts, which then takes the plain way. Positions of escaped bytes are plaintext: the
 * arrays they are read into are zeroed.
 */
import { NodeBuffer } from '../node-buffer.js';

/** Runs of bytes at most this long are moved byte by byte when escapes are made: cheaper than a call to copyWithin. */
const SHORT_RUN = 16;

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

/** `from`, twice the size; the old one is zeroed (it holds positions in a plaintext). */
function grow(from: Int32Array): Int32Array<ArrayBuffer> {
  const to = new Int32Array(from.length * 2);
  to.set(from);
  from.fill(0);
  return to;
}

/** Zeroes arrays of positions in a plaintext. */
export function forget(...arrays: Int32Array[]): void {
  for (const a of arrays) a.fill(0);
}

/** The letter of each two-byte escape JSON.stringify writes, by the byte it stands for; 0: written \u00XX (other controls) or as it is. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const [c, letter] of [[0x22, 0x22], [0x5c, 0x5c], [0x08, 0x62], [0x0c, 0x66], [0x0a, 0x6e], [0x0d, 0x72], [0x09, 0x74]] as const) SHORT_ESCAPE[c] = letter;
const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');

/** The bytes of a string's UTF-8 that JSON.stringify escapes: where each is, and how many bytes the escapes add. */
export interface ToEscape {
  at: Int32Array;
  count: number;
  extra: number;
}

/** The bytes JSON.stringify's escape of each byte adds: 1 for the two-character escapes, 5 for \u00XX, 0 for bytes written as they are. */
const ESCAPE_EXTRA = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) ESCAPE_EXTRA[c] = 5;
for (let c = 0; c < 256; c++) if (SHORT_ESCAPE[c]) ESCAPE_EXTRA[c] = 1;

/** Records the escapable bytes of `bytes[from, to)` in `found`, in order. */
function collectEscapable(bytes: Uint8Array, from: number, to: number, found: ToEscape): void {
  for (let j = from; j < to; j++) {
    const e = ESCAPE_EXTRA[bytes[j]!]!;
    if (e === 0) continue;
    if (found.count === found.at.length) found.at = grow(found.at);
    found.at[found.count++] = j;
    found.extra += e;
  }
}

/**
 * The bytes of `bytes[start, end)` (a string's UTF-8) that JSON.stringify escapes, found four at a
 * time: a word holding none (almost all of them, in text) costs three subtractions. Bytes of
 * multi-byte characters are all 0x80 and above, so none is ever taken for one of these.
 */
export function findEscapable(bytes: Uint8Array, start: number, end: number): ToEscape {
  const found: ToEscape = { at: new Int32Array(1024), count: 0, extra: 0 };
  const aligned = Math.min(end, start + ((4 - ((bytes.byteOffset + start) & 3)) & 3));
  collectEscapable(bytes, start, aligned, found);
  const words = (end - aligned) >> 2;
  if (words > 0) {
    const w32 = new Int32Array(bytes.buffer, bytes.byteOffset + aligned, words);
    for (let k = 0; k < words; k++) {
      const w = w32[k]!;
      const q = w ^ 0x22222222;
      const b = w ^ 0x5c5c5c5c;
      // A byte below 0x20, or one equal to 0x22 or 0x5c (a zero byte in q or b), sets a top bit here
      // (exact as a test of the whole word; which byte it was, the bytes themselves tell).
      if ((((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((b - 0x01010101) & ~b)) & 0x80808080) {
        collectEscapable(bytes, aligned + k * 4, aligned + k * 4 + 4, found);
      }
    }
  }
  collectEscapable(bytes, aligned + words * 4, end, found);
  return found;
}

/**
 * Escapes the bytes {@link findEscapable} found (all before `end`) as JSON.stringify does, in
 * place: from the end backwards, each run moved right by the escapes still to come before it. The
 * buffer must hold `end + found.extra` bytes.
 */
export function escapeInPlace(bytes: Uint8Array, end: number, found: ToEscape): void {
  let read = end;
  let write = end + found.extra;
  for (let k = found.count - 1; k >= 0; k--) {
    const p = found.at[k]!;
    const run = read - (p + 1);
    if (run <= SHORT_RUN) for (let r = read; r > p + 1; ) bytes[--write] = bytes[--r]!;
    else {
      bytes.copyWithin(write - run, p + 1, read);
      write -= run;
    }
    const c = bytes[p]!;
    const letter = SHORT_ESCAPE[c]!;
    if (letter) {
      bytes[--write] = letter;
    } else {
      bytes[--write] = HEX_DIGITS[c & 15]!;
      bytes[--write] = HEX_DIGITS[c >> 4]!;
      bytes[--write] = 0x30;
      bytes[--write] = 0x30;
      bytes[--write] = 0x75; // u
    }
    bytes[--write] = BACKSLASH;
    read = p;
  }
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
