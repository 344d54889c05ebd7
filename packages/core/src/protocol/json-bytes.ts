/**
 * JSON to and from UTF-8 bytes with each long string copied once, not three times.
 *
 * `JSON.stringify` builds a large result out of small parts, which encoding then joins into one
 * more string before it becomes bytes; `JSON.parse` of decoded bytes copies every string once more.
 * A 10 MiB prompt so costs 20 MiB of fresh memory on the way out, and as much on the way in. Here
 * the long strings (at least {@link LONG_STRING} characters) are set aside, the rest of the value
 * (its "skeleton", small) goes through JSON.stringify / JSON.parse as before with a stand-in for
 * each, and the long strings are written straight into the output bytes, or decoded straight out
 * of the input bytes. Their escapes are made and undone on the bytes, in place: text such as a
 * letter has a line break or a quote every few dozen bytes, and doing that a string slice at a time
 * through JSON.stringify cost more than the encoding itself.
 *
 * Exact: the bytes written are those of `TextEncoder.encode(JSON.stringify(value))`, and the value
 * read is that of `JSON.parse(decode(bytes))`, refusals included. Anything this module is not
 * sure about (an escape it does not handle, a stand-in that ends up as a key, more string literals
 * than it is worth scanning) goes the plain way.
 */

/** Strings at least this long are set aside. */
export const LONG_STRING = 16 * 1024;
/** Characters of a long string written at a time when it has a lone surrogate (each escaped slice is a short-lived string). */
const SLICE_CHARS = 32 * 1024;
/** What JSON.stringify escapes in a string (surrogates: when lone; pairs are left to it too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Scanning gives up (plain path) after this many literals per byte of input: it would not pay. */
const MAX_LITERALS_PER_BYTE = 1 / 64;

/** Runs of bytes at most this long are moved byte by byte when escapes are undone or made: cheaper than a call to copyWithin. */
const SHORT_RUN = 16;

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

/** What each simple escape stands for, by the byte after the backslash; -1: not a simple escape. */
const SIMPLE_ESCAPES = new Int16Array(256).fill(-1);
for (const [c, v] of [[0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x08], [0x66, 0x0c], [0x6e, 0x0a], [0x72, 0x0d], [0x74, 0x09]] as const) SIMPLE_ESCAPES[c] = v;
/** Hex digit values by byte; -1: not a hex digit. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = HEX['0123456789ABCDEF'.charCodeAt(i)] = i;

function hex4(bytes: Uint8Array, at: number, end: number): number {
  if (at + 4 > end) return -1;
  const v = (HEX[bytes[at]!]! << 12) | (HEX[bytes[at + 1]!]! << 8) | (HEX[bytes[at + 2]!]! << 4) | HEX[bytes[at + 3]!]!;
  // A -1 anywhere makes v negative: shifted left, -1 keeps its sign bit and sets every bit above the digit's place.
  return v < 0 ? -1 : v;
}

/**
 * The escape at `at` (a backslash) in a literal ending at `end`, packed as `codePoint * 16 + length`
 * (its length in bytes: 2, 6 or 12), or -1 for anything JSON.parse refuses and for a lone surrogate
 * (valid JSON, but a string UTF-8 cannot hold: the plain way keeps it exact). A number, not an
 * object: a long text has one escape every few dozen bytes.
 */
function readEscape(bytes: Uint8Array, at: number, end: number): number {
  if (at + 1 >= end) return -1;
  const c = bytes[at + 1]!;
  const simple = SIMPLE_ESCAPES[c]!;
  if (simple >= 0) return simple * 16 + 2;
  if (c !== 0x75) return -1; // \u
  const unit = hex4(bytes, at + 2, end);
  if (unit < 0 || (unit >= 0xdc00 && unit <= 0xdfff)) return -1;
  if (unit < 0xd800 || unit > 0xdbff) return unit * 16 + 6;
  if (bytes[at + 6] !== BACKSLASH || bytes[at + 7] !== 0x75) return -1;
  const low = hex4(bytes, at + 8, end);
  if (low < 0xdc00 || low > 0xdfff) return -1;
  return (0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)) * 16 + 12;
}

/** A literal's escapes, in order: where each starts, and what it stands for (packed as {@link readEscape} packs it). */
interface Escapes {
  at: Int32Array;
  packed: Int32Array;
  count: number;
}

/** Every escape of the literal, read once; undefined when one is not one {@link unescapeInPlace} handles. Reads only. */
function readEscapes(bytes: Uint8Array, literal: StringLiteral): Escapes | undefined {
  let at = new Int32Array(1024);
  let packed = new Int32Array(1024);
  let count = 0;
  for (let b = indexOf(bytes, BACKSLASH, literal.start); b !== -1 && b < literal.end; ) {
    const escape = readEscape(bytes, b, literal.end);
    if (escape < 0) {
      forget(at, packed);
      return undefined;
    }
    if (count === at.length) {
      at = grow(at);
      packed = grow(packed);
    }
    at[count] = b;
    packed[count++] = escape;
    b = indexOf(bytes, BACKSLASH, b + (escape & 15));
  }
  return { at, packed, count };
}

/** `from`, twice the size; the old one is zeroed (it may hold what escapes stand for). */
function grow(from: Int32Array): Int32Array<ArrayBuffer> {
  const to = new Int32Array(from.length * 2);
  to.set(from);
  from.fill(0);
  return to;
}

/** Zeroes the arrays escapes were read into. */
function forget(...arrays: Int32Array[]): void {
  for (const a of arrays) a.fill(0);
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
 * Replaces the literal's escapes (read by {@link readEscapes}) by the UTF-8 of what they stand for,
 * in place (every escape is longer than its UTF-8), and returns where the unescaped contents end.
 */
function unescapeInPlace(bytes: Uint8Array, literal: StringLiteral, escapes: Escapes): number {
  const { at, packed, count } = escapes;
  // Nothing moves before the first escape.
  let write = count > 0 ? at[0]! : literal.end;
  let read = write;
  for (let k = 0; k < count; k++) {
    const b = at[k]!;
    if (b - read <= SHORT_RUN) while (read < b) bytes[write++] = bytes[read++]!;
    else {
      bytes.copyWithin(write, read, b);
      write += b - read;
    }
    write += writeUtf8(bytes, write, packed[k]! >>> 4);
    read = b + (packed[k]! & 15);
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
  const escapes = new Map<StringLiteral, Escapes>();
  try {
    return parseLongStrings(bytes, options, escapes);
  } finally {
    // What the escapes stand for is plaintext (all of its non-ASCII, from a router that escapes it): zeroed like the bytes.
    for (const found of escapes.values()) forget(found.at, found.packed);
  }
}

/** {@link parseJsonBytes}, keeping each long literal's escapes in `escapes` (the caller zeroes them). */
function parseLongStrings(bytes: Uint8Array, options: ParseBytesOptions, escapes: Map<StringLiteral, Escapes>): unknown {
  const { text, contents } = textDecoders(options.fatal);
  const parse = options.parse ?? ((t: string) => JSON.parse(t) as unknown);
  const plain = () => parse(text.decode(bytes));
  if (bytes.length < LONG_STRING) return plain();
  const literals = findLongStrings(bytes, LONG_STRING);
  if (!literals || literals.length === 0) return plain();
  for (const literal of literals) {
    if (hasControlByte(bytes, literal.start, literal.end)) return plain();
    if (!literal.escaped) continue;
    const found = readEscapes(bytes, literal);
    if (!found) return plain();
    escapes.set(literal, found);
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
    const found = escapes.get(literal);
    const end = found ? unescapeInPlace(bytes, literal, found) : literal.end;
    holder[key] = contents.decode(bytes.subarray(literal.start, end));
  });
  return box.value;
}

// ---- writing ----

/** The letter of each two-byte escape JSON.stringify writes, by the byte it stands for; 0: written \u00XX (other controls) or as it is. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const [c, letter] of [[0x22, 0x22], [0x5c, 0x5c], [0x08, 0x62], [0x0c, 0x66], [0x0a, 0x6e], [0x0d, 0x72], [0x09, 0x74]] as const) SHORT_ESCAPE[c] = letter;
const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');

/** The bytes of a string's UTF-8 that JSON.stringify escapes: where each is, and how many bytes the escapes add. */
interface ToEscape {
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
function findEscapable(bytes: Uint8Array, start: number, end: number): ToEscape {
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
function escapeInPlace(bytes: Uint8Array, end: number, found: ToEscape): void {
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
function hasReplacementCharacter(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = indexOf(bytes, 0xef, start); i !== -1 && i + 2 < end; i = indexOf(bytes, 0xef, i + 1)) {
    if (bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) return true;
  }
  return false;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** `isWellFormed` where the runtime lacks it. @internal */
export function wellFormedPortable(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/** False if `text` has a lone surrogate (JSON.stringify escapes it; UTF-8 cannot hold it). */
function wellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  return native ? native.call(text) : wellFormedPortable(text);
}

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
   * Writes long string `s` as JSON.stringify would inside its quotes: its UTF-8 first, then the
   * bytes that need it escaped in place. A lone surrogate (which UTF-8 cannot hold) sends it the
   * slow way: JSON.stringify a slice at a time.
   */
  const putLong = (s: string): boolean => {
    const start = at;
    if (!put(s)) return false;
    if (!hasReplacementCharacter(out, start, at) || wellFormed(s)) {
      const found = findEscapable(out, start, at);
      try {
        if (found.count === 0) return true;
        if (!room(found.extra)) return false;
        escapeInPlace(out, at, found);
        at += found.extra;
        return at <= options.maxBytes;
      } finally {
        forget(found.at); // where the quotes and line breaks of a plaintext are
      }
    }
    at = start;
    for (let i = 0; i < s.length; ) {
      let j = Math.min(i + SLICE_CHARS, s.length);
      // Never split a surrogate pair: each half alone would be escaped as a lone surrogate.
      const last = s.charCodeAt(j - 1);
      if (j < s.length && last >= 0xd800 && last <= 0xdbff) j--;
      // A slice with nothing to escape goes in as it is (a view of the string, no copy).
      const slice = s.slice(i, j);
      if (!put(NEEDS_ESCAPE.test(slice) ? JSON.stringify(slice).slice(1, -1) : slice)) return false;
      i = j;
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
