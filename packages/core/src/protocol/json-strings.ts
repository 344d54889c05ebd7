/**
 * Long JSON strings on UTF-8 bytes, for json-parse.ts and json-stringify.ts, which copy each long
 * string once, straight between its string and the bytes, where JSON.stringify and JSON.parse of
 * whole texts would copy it three times (a 10 MiB prompt: 20 MiB of fresh memory each way). The
 * rest of a value (its "skeleton", small) goes through JSON.stringify / JSON.parse with a random
 * stand-in for each long string.
 */
import { BACKSLASH, QUOTE, indexOf } from './json-escapes.js';
import { NodeBuffer } from '../node-buffer.js';
/** Scanning gives up (the whole text is parsed) after this many literals per byte of input: it would not pay. */
const MAX_LITERALS_PER_BYTE = 1 / 64;

/** The UTF-8 length of `text` (lone surrogates count as U+FFFD, as TextEncoder writes them). */
export function utf8Length(text: string): number {
  return NodeBuffer ? NodeBuffer.byteLength(text, 'utf8') : utf8LengthPortable(text);
}

/** {@link utf8Length} without Node's Buffer. @internal */
export function utf8LengthPortable(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 4 bytes for 2 units
      i++;
    } else n += 2; // 3 bytes (lone surrogates become U+FFFD, also 3)
  }
  return n;
}

/** A random stand-in: no string in the input can be it, so no input can pass for a long string. */
export function standIn(): string {
  const random = globalThis.crypto.getRandomValues(new Uint32Array(4));
  return `\u0000nomyo-${Array.from(random, (n) => n.toString(36)).join('-')}-`;
}

/** A string literal's contents: bytes [start, end) between its quotes, with no escape in them. */
export interface StringLiteral {
  start: number;
  end: number;
}

/**
 * The string literals of JSON text in `bytes` whose contents are at least `minLength` bytes long,
 * in order, or undefined when reading them apart would not pay: too many literals, or a long one
 * with escapes. Line breaks and quotes come every few dozen bytes in a letter, every few in code:
 * JSON.parse of the whole text undoes them natively, faster than any pass of ours over them (and
 * the escaped text decoded for it is a copy of the literal either way). Such a literal is given up
 * on as soon as it is known to be long, so its escapes are not all visited.
 *
 * Exact for any input, valid JSON or not, in this sense: wherever JSON.parse starts a string at a
 * quote, the scan does too, and both end it at the same quote (the first one not escaped). Bytes
 * of multi-byte UTF-8 characters are never quotes or backslashes, so this holds on the bytes.
 */
export function findLongStrings(bytes: Uint8Array, minLength: number): StringLiteral[] | undefined {
  const found: StringLiteral[] = [];
  const budget = Math.max(64, bytes.length * MAX_LITERALS_PER_BYTE);
  let literals = 0;
  let at = 0;
  for (;;) {
    const open = indexOf(bytes, QUOTE, at);
    if (open === -1) return found;
    if (++literals > budget) return undefined;
    // A quote ends the string unless escaped: preceded by an odd run of backslashes (they pair off,
    // the last one escaping the quote). Only quotes are searched for, not every escape. The run
    // never reaches back past `open`, itself a quote.
    let quote = indexOf(bytes, QUOTE, open + 1);
    while (quote !== -1 && oddBackslashesBefore(bytes, quote)) {
      if (quote - open - 1 >= minLength) return undefined; // long, with escapes
      quote = indexOf(bytes, QUOTE, quote + 1);
    }
    if (quote === -1) return found; // unterminated: JSON.parse refuses it
    if (quote - open - 1 >= minLength) {
      if (indexOf(bytes.subarray(0, quote), BACKSLASH, open + 1) !== -1) return undefined; // long, with escapes
      found.push({ start: open + 1, end: quote });
    }
    at = quote + 1;
  }
}

/** True when the run of backslashes just before `at` is odd (what is at `at` is escaped). */
function oddBackslashesBefore(bytes: Uint8Array, at: number): boolean {
  let k = at - 1;
  while (bytes[k] === BACKSLASH) k--;
  return ((at - 1 - k) & 1) === 1;
}

