/**
 * JSON to and from UTF-8 bytes with each long string copied once, not three times.
 *
 * `JSON.stringify` builds a large result out of small parts, which encoding then joins into one
 * more string before it becomes bytes; `JSON.parse` of decoded bytes copies every string once more.
 * A 10 MiB prompt so costs 20 MiB of fresh memory on the way out, and as much on the way in. Here
 * the long strings (at least {@link LONG_STRING} characters) are set aside, the rest of the value
 * (its "skeleton", small) goes through JSON.stringify / JSON.parse as before with a stand-in for
 * each, and the long strings are written straight into the output bytes, or decoded straight out
 * of the input bytes.
 *
 * Exact: the bytes written are those of `TextEncoder.encode(JSON.stringify(value))`, and the value
 * read is that of `JSON.parse(decode(bytes))`, refusals included. Anything this module is not
 * sure about (an escape it does not handle, a stand-in that ends up as a key, more string literals
 * than it is worth scanning) goes the plain way.
 */

/** Strings at least this long are set aside. */
export const LONG_STRING = 16 * 1024;
/** Characters of a long string written at a time (each escaped one is a short-lived string). */
const SLICE_CHARS = 32 * 1024;
/** What JSON.stringify escapes in a string (surrogates: when lone; pairs are left to it too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Scanning gives up (plain path) after this many literals per byte of input: it would not pay. */
const MAX_LITERALS_PER_BYTE = 1 / 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

type IndexOf = (bytes: Uint8Array, value: number, from: number) => number;
const NodeBuffer = (globalThis as { Buffer?: { prototype: { indexOf(value: number, from: number): number } } }).Buffer;
/** Node's Buffer#indexOf is memchr, ten times the speed of TypedArray#indexOf. */
const indexOf: IndexOf = NodeBuffer
  ? (bytes, value, from) => NodeBuffer.prototype.indexOf.call(bytes, value, from)
  : (bytes, value, from) => bytes.indexOf(value, from);

const encoder = new TextEncoder();
const NodeByteLength = (globalThis as { Buffer?: { byteLength(text: string, encoding: 'utf8'): number } }).Buffer?.byteLength;

/** The UTF-8 length of `text` (lone surrogates count as U+FFFD, as TextEncoder writes them). */
function utf8Length(text: string): number {
  return NodeByteLength ? NodeByteLength(text, 'utf8') : utf8LengthPortable(text);
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

/** A string literal's contents: bytes [start, end) between its quotes. */
export interface StringLiteral {
  start: number;
  end: number;
  /** True when it contains a backslash (an escape). */
  escaped: boolean;
}

/**
 * The string literals of JSON text in `bytes` whose contents are at least `minLength` bytes long,
 * in order, or undefined when there are too many literals for the scan to pay.
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
    // Each search only moves forward: a string with many escapes costs one pass, not one per escape.
    let quote = indexOf(bytes, QUOTE, open + 1);
    let backslash = indexOf(bytes, BACKSLASH, open + 1);
    let escaped = false;
    while (backslash !== -1 && quote !== -1 && backslash < quote) {
      escaped = true;
      const next = backslash + 2; // the escaped character, whatever it is, ends no string
      if (quote < next) quote = indexOf(bytes, QUOTE, next);
      backslash = indexOf(bytes, BACKSLASH, next);
    }
    if (quote === -1) return found; // unterminated: JSON.parse refuses it
    if (quote - open - 1 >= minLength) found.push({ start: open + 1, end: quote, escaped });
    at = quote + 1;
  }
}

/** True if any byte of `bytes[start, end)` is below 0x20: JSON strings may not hold them raw. */
function hasControlByte(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  const aligned = Math.min(end, start + ((4 - ((bytes.byteOffset + start) & 3)) & 3));
  for (; i < aligned; i++) if (bytes[i]! < 0x20) return true;
  const words = (end - i) >> 2;
  if (words > 0) {
    // Four bytes at a time: a byte below 0x20 sets its top bit in (w - 0x20202020) & ~w (exact for thresholds up to 0x80).
    const w32 = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    let hit = 0;
    for (let k = 0; k < words; k++) {
      const w = w32[k]!;
      hit |= (w - 0x20202020) & ~w & 0x80808080;
    }
    if (hit !== 0) return true;
    i += words * 4;
  }
  for (; i < end; i++) if (bytes[i]! < 0x20) return true;
  return false;
}

const SIMPLE_ESCAPES: Record<number, number> = {
  0x22: 0x22, // \"
  0x5c: 0x5c, // \\
  0x2f: 0x2f, // \/
  0x62: 0x08, // \b
  0x66: 0x0c, // \f
  0x6e: 0x0a, // \n
  0x72: 0x0d, // \r
  0x74: 0x09, // \t
};

function hex4(bytes: Uint8Array, at: number, end: number): number {
  if (at + 4 > end) return -1;
  let v = 0;
  for (let i = at; i < at + 4; i++) {
    const c = bytes[i]!;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

/**
 * The escape at `at` (a backslash) in a literal ending at `end`: the code point it stands for and
 * its length in bytes, or undefined for anything JSON.parse refuses and for a lone surrogate (valid
 * JSON, but a string UTF-8 cannot hold: the plain way keeps it exact).
 */
function readEscape(bytes: Uint8Array, at: number, end: number): { codePoint: number; length: number } | undefined {
  const c = bytes[at + 1];
  if (c === undefined || at + 1 >= end) return undefined;
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return { codePoint: simple, length: 2 };
  if (c !== 0x75) return undefined; // \u
  const unit = hex4(bytes, at + 2, end);
  if (unit < 0 || (unit >= 0xdc00 && unit <= 0xdfff)) return undefined;
  if (unit < 0xd800 || unit > 0xdbff) return { codePoint: unit, length: 6 };
  if (bytes[at + 6] !== BACKSLASH || bytes[at + 7] !== 0x75) return undefined;
  const low = hex4(bytes, at + 8, end);
  if (low < 0xdc00 || low > 0xdfff) return undefined;
  return { codePoint: 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), length: 12 };
}

/** True when every escape in the literal is one {@link unescapeInPlace} handles. Reads only. */
function escapesSupported(bytes: Uint8Array, literal: StringLiteral): boolean {
  for (let b = indexOf(bytes, BACKSLASH, literal.start); b !== -1 && b < literal.end; ) {
    const escape = readEscape(bytes, b, literal.end);
    if (!escape) return false;
    b = indexOf(bytes, BACKSLASH, b + escape.length);
  }
  return true;
}

function writeUtf8(bytes: Uint8Array, at: number, cp: number): number {
  if (cp < 0x80) {
    bytes[at] = cp;
    return 1;
  }
  if (cp < 0x800) {
    bytes[at] = 0xc0 | (cp >> 6);
    bytes[at + 1] = 0x80 | (cp & 0x3f);
    return 2;
  }
  if (cp < 0x10000) {
    bytes[at] = 0xe0 | (cp >> 12);
    bytes[at + 1] = 0x80 | ((cp >> 6) & 0x3f);
    bytes[at + 2] = 0x80 | (cp & 0x3f);
    return 3;
  }
  bytes[at] = 0xf0 | (cp >> 18);
  bytes[at + 1] = 0x80 | ((cp >> 12) & 0x3f);
  bytes[at + 2] = 0x80 | ((cp >> 6) & 0x3f);
  bytes[at + 3] = 0x80 | (cp & 0x3f);
  return 4;
}

/**
 * Replaces the literal's escapes by the UTF-8 of what they stand for, in place (every escape is
 * longer than its UTF-8), and returns where the unescaped contents end. Only after
 * {@link escapesSupported} said yes.
 */
function unescapeInPlace(bytes: Uint8Array, literal: StringLiteral): number {
  let write = literal.start;
  let read = literal.start;
  for (let b = indexOf(bytes, BACKSLASH, read); b !== -1 && b < literal.end; b = indexOf(bytes, BACKSLASH, read)) {
    bytes.copyWithin(write, read, b);
    write += b - read;
    const escape = readEscape(bytes, b, literal.end)!;
    write += writeUtf8(bytes, write, escape.codePoint);
    read = b + escape.length;
  }
  bytes.copyWithin(write, read, literal.end);
  return write + (literal.end - read);
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
 * `parse(decode(bytes))`, with each long string decoded once straight from `bytes`. On success the
 * long strings' escapes have been undone in place: `bytes` is scratch afterwards (the caller zeroes
 * it, as it would the plaintext). Throws what `parse(decode(bytes))` throws.
 */
export function parseJsonBytes(bytes: Uint8Array, options: ParseBytesOptions): unknown {
  const { text, contents } = textDecoders(options.fatal);
  const parse = options.parse ?? ((t: string) => JSON.parse(t) as unknown);
  const plain = () => parse(text.decode(bytes));
  if (bytes.length < LONG_STRING) return plain();
  const literals = findLongStrings(bytes, LONG_STRING);
  if (!literals || literals.length === 0) return plain();
  for (const literal of literals) {
    if (hasControlByte(bytes, literal.start, literal.end) || (literal.escaped && !escapesSupported(bytes, literal))) return plain();
  }
  const prefix = standIn();
  let skeleton: string;
  let value: unknown;
  try {
    let at = 0;
    skeleton = '';
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
    const end = literal.escaped ? unescapeInPlace(bytes, literal) : literal.end;
    holder[key] = contents.decode(bytes.subarray(literal.start, end));
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
 * throws `options.tooLarge()`. Long strings go straight from the value into the buffer, escaped a
 * slice at a time. Throws what JSON.stringify throws (cycles, BigInt).
 */
export function stringifyJsonBytes(value: unknown, options: StringifyBytesOptions): { buffer: Uint8Array; length: number } | undefined {
  const long: string[] = [];
  const prefix = standIn();
  const skeleton = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'string' || v.length < LONG_STRING) return v;
    long.push(v);
    return prefix + (long.length - 1);
  }) as string | undefined;
  if (skeleton === undefined) return undefined;
  // UTF-8 JSON is at least as many bytes as its text has UTF-16 units: refuse early, encoding nothing.
  let units = skeleton.length;
  long.forEach((s, i) => (units += s.length - (JSON.stringify(prefix + i).length - 2)));
  if (units > options.maxBytes) throw options.tooLarge();
  if (long.length === 0) {
    // No long strings: the skeleton is the JSON, written into a buffer of exactly its size.
    const size = utf8Length(skeleton);
    if (size > options.maxBytes) throw options.tooLarge();
    const out = options.alloc(size);
    encoder.encodeInto(skeleton, out);
    return { buffer: out, length: size };
  }
  const marker = JSON.stringify(prefix).slice(0, -1); // `"\u0000nomyo-…-`, then the index and `"`
  // A long string with nothing to escape (the common case) is written whole and its size is exact;
  // for the others, room for some escapes (a buffer that turns out too small grows).
  const clean = long.map((s) => !NEEDS_ESCAPE.test(s));
  let estimate = utf8Length(skeleton);
  long.forEach((s, i) => (estimate += utf8Length(s) + (clean[i] ? 0 : (s.length >> 3) + 16)));
  let out = options.alloc(Math.min(options.maxBytes + 1, estimate));
  let at = 0;
  /** Writes `text` at `at`, growing the buffer if it does not fit; false past maxBytes. */
  const put = (text: string): boolean => {
    for (;;) {
      const { read, written } = encoder.encodeInto(text, out.subarray(at));
      if (read === text.length) {
        at += written;
        return at <= options.maxBytes;
      }
      if (out.length > options.maxBytes) return false;
      // Escapes or multi-byte characters beyond the estimate: a larger buffer, written so far copied.
      const larger = options.alloc(Math.min(options.maxBytes + 1, out.length * 2 + text.length * 3));
      larger.set(out.subarray(0, at));
      options.release(out);
      out = larger;
    }
  };
  const write = (): boolean => {
    let from = 0;
    for (let found = skeleton.indexOf(marker); found !== -1; found = skeleton.indexOf(marker, from)) {
      const close = skeleton.indexOf('"', found + marker.length);
      const index = Number(skeleton.slice(found + marker.length, close));
      const s = long[index]!;
      if (!put(skeleton.slice(from, found + 1))) return false; // up to and with the opening quote
      if (clean[index] && !put(s)) return false;
      for (let i = clean[index] ? s.length : 0; i < s.length; ) {
        let j = Math.min(i + SLICE_CHARS, s.length);
        // Never split a surrogate pair: each half alone would be escaped as a lone surrogate.
        const last = s.charCodeAt(j - 1);
        if (j < s.length && last >= 0xd800 && last <= 0xdbff) j--;
        // A slice with nothing to escape goes in as it is (a view of the string, no copy).
        const slice = s.slice(i, j);
        if (!put(NEEDS_ESCAPE.test(slice) ? JSON.stringify(slice).slice(1, -1) : slice)) return false;
        i = j;
      }
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
