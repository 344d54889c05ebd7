/**
 * JSON to and from UTF-8 bytes with each long string copied once, not three times.
 *
 * `JSON.stringify` builds a large result out of small parts, which encoding then joins into one
 * more string before it becomes bytes; `JSON.parse` of decoded bytes copies every string once more.
 * A 10 MiB prompt so costs 20 MiB of fresh memory on the way out, and as much on the way in. Here
 * the long strings (at least {@link LONG_STRING} characters) are set aside, the rest of the value
 * (its "skeleton", small) goes through JSON.stringify / JSON.parse as before with a stand-in for
 * each, and the long strings are written straight into the output bytes a slice at a time (a slice
 * with escapes through its own JSON.stringify), or decoded straight out of the input bytes when they
 * have none.
 *
 * Exact: the bytes written are those of `TextEncoder.encode(JSON.stringify(value))`, and the value
 * read is that of `JSON.parse(decode(bytes))`, refusals included. Anything this module is not
 * sure about or would be slower at (a long literal with escapes, a stand-in that ends up as a key,
 * more string literals than it is worth scanning) goes the plain way.
 */
import {
  BACKSLASH,
  CONTROL_BYTE,
  NON_ASCII_BYTE,
  QUOTE,
  byteKinds,
  hasEscapable,
  indexOf,
  wellFormed,
} from './json-escapes.js';
import { NodeBuffer, bufferView } from '../node-buffer.js';

/** Strings at least this long are set aside. */
export const LONG_STRING = 16 * 1024;
/**
 * Characters of a long string written at a time: an escaped slice (a short-lived string) stays
 * below V8's large-object size (128 KiB) even two bytes a character, so it costs no fresh pages.
 */
const SLICE_CHARS = 32 * 1024;
/** What JSON.stringify escapes in a string (surrogates: when lone; pairs are left to it too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Scanning gives up (plain path) after this many literals per byte of input: it would not pay. */
const MAX_LITERALS_PER_BYTE = 1 / 64;

const encoder = new TextEncoder();

/** The UTF-8 length of `text` (lone surrogates count as U+FFFD, as TextEncoder writes them). */
function utf8Length(text: string): number {
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

// ---- reading ----

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

export interface ParseBytesOptions {
  /** Refuse bytes that are not UTF-8 (TextDecoder `fatal`), or replace them with U+FFFD. */
  fatal: boolean;
  /** Parses the skeleton text; JSON.parse, or a wrapper that checks more (nesting depth) and maps errors. */
  parse?: (text: string) => unknown;
}

/** UTF-8 decoders for text read in parts, split at quotes: together they give what one decode of the whole gives. */
export interface Decoders {
  /** Strips a byte order mark at the start of the text, as decoding the whole text does. */
  text: TextDecoder;
  /** Keeps one: a literal's contents may well start with U+FEFF. */
  contents: TextDecoder;
}
const decoders: Record<'fatal' | 'lenient', Decoders> = {
  fatal: { text: new TextDecoder('utf-8', { fatal: true }), contents: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) },
  lenient: { text: new TextDecoder(), contents: new TextDecoder('utf-8', { ignoreBOM: true }) },
};

/**
 * `bytes[start, end)`, all below 0x80, as text: what `utf8.decode` gives them. ASCII is latin1 too,
 * whose decoding in Node is a plain copy into a one-byte string: twice the speed of TextDecoder.
 */
function decodeAscii(bytes: Uint8Array, start: number, end: number, utf8: TextDecoder): string {
  return NodeBuffer ? bufferView(bytes, start, end).toString('latin1') : utf8.decode(bytes.subarray(start, end));
}

/** The decoders for text that is refused unless UTF-8 (`fatal`), or read with U+FFFD for bad bytes. */
export function textDecoders(fatal: boolean): Decoders {
  return decoders[fatal ? 'fatal' : 'lenient'];
}

/** Where each stand-in sits in the parsed skeleton, or undefined when one is not a plain value exactly once. */
function findStandIns(value: unknown, prefix: string, count: number): Array<[Record<string, unknown>, string]> | undefined {
  const holders: Array<[Record<string, unknown>, string] | undefined> = new Array(count);
  let ok = true;
  const visit = (node: unknown): void => {
    if (typeof node !== 'object' || node === null || !ok) return;
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (key.startsWith(prefix)) ok = false;
      const v = record[key];
      if (typeof v === 'string') {
        if (v.startsWith(prefix)) {
          const i = Number(v.slice(prefix.length));
          if (!Number.isInteger(i) || i < 0 || i >= count || holders[i]) ok = false;
          else holders[i] = [record, key];
        }
      } else visit(v);
    }
  };
  visit(value);
  // A literal dropped by a duplicate key leaves its stand-in unplaced: the plain way then.
  for (let i = 0; i < count; i++) if (holders[i] === undefined) ok = false;
  return ok ? (holders as Array<[Record<string, unknown>, string]>) : undefined;
}

/**
 * `parse(decode(bytes))`, with each long string (one without escapes: see {@link findLongStrings})
 * decoded once, straight from `bytes`, which are only read. Throws what `parse(decode(bytes))` throws.
 */
export function parseJsonBytes(bytes: Uint8Array, options: ParseBytesOptions): unknown {
  const { text, contents } = textDecoders(options.fatal);
  const parse = options.parse ?? ((t: string) => JSON.parse(t) as unknown);
  const plain = () => parse(text.decode(bytes));
  if (bytes.length < LONG_STRING) return plain();
  const literals = findLongStrings(bytes, LONG_STRING);
  if (!literals || literals.length === 0) return plain();
  // The literals that are ASCII bytes: decoded at a copy's speed.
  const ascii = new Set<StringLiteral>();
  for (const literal of literals) {
    const kinds = byteKinds(bytes, literal.start, literal.end);
    if (kinds & CONTROL_BYTE) return plain();
    if (!(kinds & NON_ASCII_BYTE)) ascii.add(literal);
  }
  const prefix = standIn();
  let value: unknown;
  try {
    let at = 0;
    let skeleton = '';
    literals.forEach((literal, i) => {
      skeleton += (at === 0 ? text : contents).decode(bytes.subarray(at, literal.start)) + JSON.stringify(prefix + i).slice(1, -1);
      at = literal.end;
    });
    skeleton += contents.decode(bytes.subarray(at));
    value = parse(skeleton);
  } catch {
    return plain(); // its error, exactly
  }
  // Boxed, so that a stand-in at the top (the text is one long string) has a holder too.
  const box = { value };
  const holders = findStandIns(box, prefix, literals.length);
  if (!holders) return plain();
  literals.forEach((literal, i) => {
    const [holder, key] = holders[i]!;
    holder[key] = ascii.has(literal) ? decodeAscii(bytes, literal.start, literal.end, contents) : contents.decode(bytes.subarray(literal.start, literal.end));
  });
  return box.value;
}

// ---- writing ----

export interface StringifyBytesOptions {
  /** A buffer of at least `size` bytes for the output (secure memory for a plaintext). */
  alloc(size: number): Uint8Array;
  /** Gives back a buffer from `alloc` that was outgrown or is not returned (zeroes it). */
  release(buffer: Uint8Array): void;
  /** More UTF-8 bytes than this: {@link stringifyJsonBytes} stops and throws `tooLarge()`. */
  maxBytes: number;
  tooLarge(): Error;
}

/**
 * The UTF-8 bytes of `JSON.stringify(value)`, written into a buffer from `options.alloc`: returns
 * that buffer (release it as usual) and how many of its bytes are the JSON; undefined for a value
 * JSON.stringify makes nothing of. Past `options.maxBytes` it stops, releases what it wrote and
 * throws `options.tooLarge()`. Long strings go straight from the value into the buffer and are
 * escaped there. Throws what JSON.stringify throws (cycles, BigInt).
 */
export function stringifyJsonBytes(value: unknown, options: StringifyBytesOptions): { buffer: Uint8Array; length: number } | undefined {
  const long: string[] = [];
  // Made at the first long string: a small value (most requests) needs none.
  let prefix: string | undefined;
  const skeleton = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'string' || v.length < LONG_STRING) return v;
    long.push(v);
    prefix ??= standIn();
    return prefix + (long.length - 1);
  }) as string | undefined;
  if (skeleton === undefined) return undefined;
  // UTF-8 JSON is at least as many bytes as its text has UTF-16 units: refuse early, encoding nothing.
  let units = skeleton.length;
  long.forEach((s, i) => (units += s.length - (JSON.stringify(prefix! + i).length - 2)));
  if (units > options.maxBytes) throw options.tooLarge();
  if (long.length === 0) {
    // No long strings: the skeleton is the JSON, written into a buffer of exactly its size.
    const size = utf8Length(skeleton);
    if (size > options.maxBytes) throw options.tooLarge();
    const out = options.alloc(size);
    encoder.encodeInto(skeleton, out);
    return { buffer: out, length: size };
  }
  const marker = JSON.stringify(prefix!).slice(0, -1); // `"\u0000nomyo-…-`, then the index and `"`
  // Room for each long string as it is and its escapes: 1/16 more covers text (a line break every
  // few dozen characters, some quotes); a buffer that turns out too small grows.
  let estimate = utf8Length(skeleton);
  long.forEach((s) => (estimate += utf8Length(s) + (s.length >> 4) + 16));
  let out = options.alloc(Math.min(options.maxBytes + 1, estimate));
  let at = 0;
  /** Makes room for `more` bytes at `at` (a larger buffer, what is written copied over); false past maxBytes. */
  const room = (more: number): boolean => {
    if (at + more <= out.length) return true;
    if (out.length > options.maxBytes) return false;
    // By an eighth at least, not double: the buffer is secure memory, often locked, and a payload's size.
    const larger = options.alloc(Math.min(options.maxBytes + 1, Math.max(out.length + (out.length >> 3), at + more)));
    larger.set(out.subarray(0, at));
    options.release(out);
    out = larger;
    return at + more <= out.length;
  };
  /** Writes `text` at `at`, growing the buffer if it does not fit; false past maxBytes. */
  const put = (text: string): boolean => {
    for (;;) {
      const { read, written } = encoder.encodeInto(text, out.subarray(at));
      if (read === text.length) {
        at += written;
        return at <= options.maxBytes;
      }
      // Multi-byte characters beyond the estimate.
      if (!room(out.length - at + text.length * 3)) return false;
    }
  };
  /**
   * Writes long string `s` as JSON.stringify would inside its quotes, a slice at a time: a slice's
   * UTF-8 as it is when it has nothing to escape (prose: almost every slice), else the slice's own
   * JSON.stringify, a short-lived string (a letter or code has a line break or a quote every few
   * dozen bytes, and the runtime escapes faster than JavaScript can on bytes). After a slice that
   * had escapes, the next is first asked by a regex, which stops at its first escape.
   */
  const putLong = (s: string): boolean => {
    let escaped = false;
    for (let i = 0; i < s.length; ) {
      let j = Math.min(i + SLICE_CHARS, s.length);
      // Never split a surrogate pair: each half alone would be escaped as a lone surrogate.
      const last = s.charCodeAt(j - 1);
      if (j < s.length && last >= 0xd800 && last <= 0xdbff) j--;
      const slice = s.slice(i, j); // a view of the string, no copy
      i = j;
      const from = at;
      if (!(escaped && NEEDS_ESCAPE.test(slice))) {
        if (!put(slice)) return false;
        escaped = !wellFormed(slice, out.subarray(from, at)) || hasEscapable(out, from, at);
        if (!escaped) continue;
        at = from; // written over: the escaped slice is never shorter
      }
      escaped = true;
      if (!put(JSON.stringify(slice).slice(1, -1))) return false;
    }
    return true;
  };
  const write = (): boolean => {
    let from = 0;
    for (let found = skeleton.indexOf(marker); found !== -1; found = skeleton.indexOf(marker, from)) {
      const close = skeleton.indexOf('"', found + marker.length);
      const index = Number(skeleton.slice(found + marker.length, close));
      if (!put(skeleton.slice(from, found + 1))) return false; // up to and with the opening quote
      if (!putLong(long[index]!)) return false;
      from = close; // the closing quote comes with the next part
    }
    return put(skeleton.slice(from));
  };
  if (!write()) {
    options.release(out);
    throw options.tooLarge();
  }
  return { buffer: out, length: at };
}

/**
 * `TextEncoder.encode(JSON.stringify(value))` for a value that makes JSON (an object), in a new plain
 * buffer, with no whole JSON string made first: a body for fetch or a Response. Buffers outgrown on
 * the way are zeroed; the caller zeroes the result when done with it, if it can know when.
 */
export function jsonBytes(value: object): Uint8Array<ArrayBuffer> {
  const json = stringifyJsonBytes(value, {
    alloc: (size) => new Uint8Array(size),
    release: (outgrown) => outgrown.fill(0),
    maxBytes: Number.MAX_SAFE_INTEGER, // sizes were checked where the value came from
    tooLarge: () => new RangeError('JSON too large'),
  });
  if (json === undefined) throw new TypeError('not a JSON value'); // an object always makes JSON (toJSON aside)
  return json.buffer.subarray(0, json.length) as Uint8Array<ArrayBuffer>;
}
