/**
 * JSON strings on UTF-8 bytes: what kinds of byte a long literal read holds (json-parse.ts, and
 * body/read.ts for a ciphertext), whether a slice of a long string written has anything
 * JSON.stringify escapes (json-stringify.ts then writes that slice's JSON.stringify instead), and
 * whether it is well-formed UTF-16.
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
 * or neither (0: printable ASCII only), in one pass, four bytes at a time (see {@link edgesAndWords}).
 */
export function byteKinds(bytes: Uint8Array, start: number, end: number): number {
  const { headEnd, tailStart, words, count } = edgesAndWords(bytes, start, end);
  const head = edgeKinds(bytes, start, headEnd);
  const tail = edgeKinds(bytes, tailStart, end);
  const control = controlFlags(words, count);
  const inWords = ((control & 0x80808080) !== 0 ? CONTROL_BYTE : 0) | ((nonAsciiFlags & 0x80808080) !== 0 ? NON_ASCII_BYTE : 0);
  return head | tail | inWords;
}

/** {@link byteKinds} of a few bytes, one at a time. */
function edgeKinds(bytes: Uint8Array, from: number, to: number): number {
  let kinds = 0;
  for (let i = from; i < to; i++) kinds |= bytes[i]! < 0x20 ? CONTROL_BYTE : bytes[i]! >= 0x80 ? NON_ASCII_BYTE : 0;
  return kinds;
}

/** The other finding of the last {@link controlFlags}: a top bit set where its words had a byte of 0x80 or above. */
let nonAsciiFlags = 0;

/**
 * A top bit set where `words[0, count)` has a byte below 0x20, and {@link nonAsciiFlags} set. Two
 * findings, one of them left in a module variable: a store there, as a return, needs no type
 * feedback, where combining them after the loop would (see {@link edgesAndWords}).
 */
function controlFlags(words: Int32Array, count: number): number {
  let low = 0;
  let high = 0;
  for (let k = 0; k < count; k += WORDS_PER_PASS) {
    const w0 = words[k]!, w1 = words[k + 1]!, w2 = words[k + 2]!, w3 = words[k + 3]!;
    // A byte below 0x20 sets its top bit in (w - 0x20202020) & ~w (exact for the word as a whole, for thresholds up to 0x80).
    low |= ((w0 - 0x20202020) & ~w0) | ((w1 - 0x20202020) & ~w1) | ((w2 - 0x20202020) & ~w2) | ((w3 - 0x20202020) & ~w3);
    high |= w0 | w1 | w2 | w3;
  }
  nonAsciiFlags = high;
  return low;
}

const NO_WORDS = new Int32Array(0);
/**
 * The scans read four words a pass: a pass's bounds, map and interrupt checks are then paid once for
 * 16 bytes (a third fewer instructions than one word a pass, counted with callgrind).
 */
const WORDS_PER_PASS = 4;

/** Where {@link edgesAndWords} has the scans read: `count` is `words.length`, given apart (see there). */
interface Layout {
  headEnd: number;
  tailStart: number;
  words: Int32Array;
  count: number;
}

/**
 * How the scans here read `bytes[start, end)`: aligned 32-bit words, a multiple of
 * {@link WORDS_PER_PASS} of them, four bytes at a time, and the bytes before and after them
 * (`[start, headEnd)`, at most four, and `[tailStart, end)`, at most 15) one at a time. The head may
 * overlap the words, which a scan for whether some kind of byte is there allows.
 *
 * Laid out for V8's optimizing compiler, which compiles a long loop while it runs the first time
 * (on-stack replacement) with type feedback only for the code run so far. Code without feedback
 * met later deoptimizes the compiled code, and here that happened again on every later call that
 * met it: the head or tail loop of an unaligned range after aligned ones, or code after a loop
 * first compiled while it ran (pool buffers come at any alignment). So every call of a scan runs
 * all of its code, and each long loop is a function of its own with nothing after it that needs
 * feedback: a return, or a store to a variable of this module. The loops count to a number given
 * apart, not to `words.length`, which an array taken as a parameter has V8 load on every pass.
 */
function edgesAndWords(bytes: Uint8Array, start: number, end: number): Layout {
  const headEnd = Math.min(end, start + 4);
  const first = (bytes.byteOffset + start + 3) & ~3; // in the ArrayBuffer, aligned, within the first four bytes
  const count = ((((bytes.byteOffset + end) & ~3) - first) >> 2) & -WORDS_PER_PASS;
  return count > 0
    ? { headEnd, tailStart: first - bytes.byteOffset + 4 * count, words: new Int32Array(bytes.buffer, first, count), count }
    : { headEnd, tailStart: headEnd, words: NO_WORDS, count: 0 };
}

// ---- writing ----

/** Whether byte `c` is one JSON.stringify escapes inside a string: below 0x20, `"` or `\`. */
function escapable(c: number): boolean {
  return c < 0x20 || c === QUOTE || c === BACKSLASH;
}

/**
 * Whether `bytes[start, end)` (a string's UTF-8) holds a byte JSON.stringify escapes, four bytes at
 * a time (see {@link edgesAndWords}). Bytes of multi-byte characters are all 0x80 and above, so none
 * is ever taken for one of these.
 */
export function hasEscapable(bytes: Uint8Array, start: number, end: number): boolean {
  const { headEnd, tailStart, words, count } = edgesAndWords(bytes, start, end);
  const head = edgeEscapable(bytes, start, headEnd);
  const tail = edgeEscapable(bytes, tailStart, end);
  const flags = escapableFlags(words, count);
  return head || tail || (flags & 0x80808080) !== 0;
}

/** {@link hasEscapable} for a few bytes, one at a time. */
function edgeEscapable(bytes: Uint8Array, from: number, to: number): boolean {
  let found = false;
  for (let i = from; i < to; i++) found ||= escapable(bytes[i]!);
  return found;
}

/**
 * A top bit set where `words[0, count)` has a byte JSON.stringify escapes: a word holding none
 * (almost all of them, in prose) costs two tests, and no branch.
 */
function escapableFlags(words: Int32Array, count: number): number {
  let flags = 0;
  for (let k = 0; k < count; k += WORDS_PER_PASS) {
    const w0 = words[k]!, w1 = words[k + 1]!, w2 = words[k + 2]!, w3 = words[k + 3]!;
    // XOR 0x02 takes '"' (0x22) to 0x20, keeps the bytes below 0x20 below it and takes no other
    // byte below 0x21: a byte below 0x21 then sets its top bit in (x - 0x21212121) & ~x. A backslash
    // (0x5c) is a zero byte in b, which sets its top bit in (b - 0x01010101) & ~b. Both are exact as
    // tests of the whole word.
    const x0 = w0 ^ 0x02020202, x1 = w1 ^ 0x02020202, x2 = w2 ^ 0x02020202, x3 = w3 ^ 0x02020202;
    const b0 = w0 ^ 0x5c5c5c5c, b1 = w1 ^ 0x5c5c5c5c, b2 = w2 ^ 0x5c5c5c5c, b3 = w3 ^ 0x5c5c5c5c;
    flags |=
      ((x0 - 0x21212121) & ~x0) | ((x1 - 0x21212121) & ~x1) | ((x2 - 0x21212121) & ~x2) | ((x3 - 0x21212121) & ~x3) |
      ((b0 - 0x01010101) & ~b0) | ((b1 - 0x01010101) & ~b1) | ((b2 - 0x01010101) & ~b2) | ((b3 - 0x01010101) & ~b3);
  }
  return flags;
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
 * runtime's isWellFormed where there is one: at once for a one-byte string, one quick scan for
 * others, where a search of the UTF-8 for U+FFFD would take one indexOf per full-width punctuation
 * mark of Chinese text (docs/performance.md). Without it, `utf8` (what encodeInto wrote for `text`)
 * spares the regex when it holds no U+FFFD.
 */
export function wellFormed(text: string, utf8?: Uint8Array): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (native) return native.call(text);
  return (utf8 !== undefined && !hasReplacementCharacter(utf8)) || wellFormedPortable(text);
}
