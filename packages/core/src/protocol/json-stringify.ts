/**
 * `TextEncoder.encode(JSON.stringify(value))` with each long string (see json-strings.ts) written
 * straight from its string into the bytes, a slice at a time (a slice with escapes through its own
 * JSON.stringify). Exact: the bytes are those of `TextEncoder.encode(JSON.stringify(value))`.
 */
import { jsonNestingExceeds } from './json-depth.js';
import { hasEscapable, wellFormed } from './json-escapes.js';
import { standIn, utf8Length } from './json-strings.js';
import { LONG_STRING_BYTES } from '../sizes.js';
import { head, heapBytes, type ByteSource, type OwnedBytes } from '../memory/owned-bytes.js';

/**
 * Characters of a long string written at a time: an escaped slice (a short-lived string) stays
 * below V8's large-object size (128 KiB) even two bytes a character, so it costs no fresh pages.
 */
const SLICE_CHARS = 32 * 1024;
/** What JSON.stringify escapes in a string (surrogates: when lone; pairs are left to it too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

const encoder = new TextEncoder();

export interface StringifyBytesOptions {
  /** Where the output goes (secure memory for a plaintext); a buffer outgrown is released there. */
  into: ByteSource;
  /** More UTF-8 bytes than this: {@link stringifyJsonBytes} stops and throws `tooLarge()`. */
  maxBytes: number;
  tooLarge(): Error;
  /**
   * With it, a value nested deeper than `limit` arrays and objects is refused before anything is
   * written: `error()` is thrown. Counted on the JSON without its long strings, so it costs little.
   */
  maxDepth?: { limit: number; error(): Error };
}

/**
 * The UTF-8 bytes of `JSON.stringify(value)`, written into bytes taken from `options.into` (the
 * caller releases them); undefined for a value JSON.stringify makes nothing of. Past
 * `options.maxBytes` it stops, releases what it wrote and throws `options.tooLarge()`. Long strings
 * go straight from the value into the bytes. Throws what JSON.stringify throws (cycles, BigInt).
 */
export function stringifyJsonBytes(value: unknown, options: StringifyBytesOptions): OwnedBytes | undefined {
  const long: string[] = [];
  // Made at the first long string: a small value (most requests) needs none.
  let prefix: string | undefined;
  const skeleton = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'string' || v.length < LONG_STRING_BYTES) return v;
    long.push(v);
    prefix ??= standIn();
    return prefix + (long.length - 1);
  }) as string | undefined;
  if (skeleton === undefined) return undefined;
  if (options.maxDepth && jsonNestingExceeds(skeleton, options.maxDepth.limit)) throw options.maxDepth.error();
  // UTF-8 JSON is at least as many bytes as its text has UTF-16 units: refuse early, encoding nothing.
  let units = skeleton.length;
  long.forEach((s, i) => (units += s.length - (JSON.stringify(prefix! + i).length - 2)));
  if (units > options.maxBytes) throw options.tooLarge();
  if (long.length === 0) {
    // No long strings: the skeleton is the JSON, written into a buffer of exactly its size.
    const size = utf8Length(skeleton);
    if (size > options.maxBytes) throw options.tooLarge();
    const out = options.into.take(size);
    encoder.encodeInto(skeleton, out.bytes);
    return out;
  }
  const marker = JSON.stringify(prefix!).slice(0, -1); // `"\u0000nomyo-…-`, then the index and `"`
  // Room for each long string as it is and its escapes: 1/16 more covers text (a line break every
  // few dozen characters, some quotes); a buffer that turns out too small grows.
  let estimate = utf8Length(skeleton);
  long.forEach((s) => (estimate += utf8Length(s) + (s.length >> 4) + 16));
  let owner = options.into.take(Math.min(options.maxBytes + 1, estimate));
  let out = owner.bytes;
  let at = 0;
  /** Makes room for `more` bytes at `at` (a larger buffer, what is written copied over); false past maxBytes. */
  const room = (more: number): boolean => {
    if (at + more <= out.length) return true;
    if (out.length > options.maxBytes) return false;
    // By an eighth at least, not double: the buffer is secure memory, often locked, and a payload's size.
    const larger = options.into.take(Math.min(options.maxBytes + 1, Math.max(out.length + (out.length >> 3), at + more)));
    larger.bytes.set(out.subarray(0, at));
    owner.release();
    owner = larger;
    out = larger.bytes;
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
  let written = false;
  try {
    written = write();
  } finally {
    if (!written) owner.release();
  }
  if (!written) throw options.tooLarge();
  return head(owner, at);
}

/**
 * `TextEncoder.encode(JSON.stringify(value))` for a value that makes JSON (an object), in a new plain
 * buffer, with no whole JSON string made first: a body for fetch or a Response. Buffers outgrown on
 * the way are zeroed; the caller zeroes the result when done with it, if it can know when.
 */
export function jsonBytes(value: object): Uint8Array<ArrayBuffer> {
  const json = stringifyJsonBytes(value, {
    into: heapBytes, // outgrown buffers zeroed; the result is handed on, not released
    maxBytes: Number.MAX_SAFE_INTEGER, // sizes were checked where the value came from
    tooLarge: () => new RangeError('JSON too large'),
  });
  if (json === undefined) throw new TypeError('not a JSON value'); // an object always makes JSON (toJSON aside)
  return json.bytes;
}
