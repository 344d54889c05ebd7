/**
 * Strict standard base64 between byte arrays: encoded straight into a request body, decoded straight
 * out of an answer body, so a multi-megabyte ciphertext never becomes a JS string. Same alphabet and
 * the same refusals as base64.ts (padding required, canonical pad bits, no whitespace, no base64url).
 *
 * Work goes in pieces of 64 Ki characters: with Node's Buffer each piece is one short string, which
 * V8 keeps in its young generation and reuses, where a whole 13 MB string would take fresh pages
 * (first touch of new memory is the slow part on small machines). Without Buffer (browsers, Deno),
 * a lookup-table codec in plain JS.
 */
import { ALPHABET, invalid } from './base64.js';
import { NodeBuffer, bufferView } from '../node-buffer.js';

/** Characters per piece of Node's codec (a multiple of 4), and the bytes they stand for (a multiple of 3). */
const BASE64_PIECE_CHARS = 65536;
/** @internal for tests: inputs longer than this cross a piece boundary. */
export const BASE64_PIECE_BYTES = (BASE64_PIECE_CHARS / 4) * 3;

const PAD = 0x3d;
const MINUS = 0x2d;
const UNDERSCORE = 0x5f;

/** The length of the padded base64 text of `byteLength` bytes. */
export function base64Length(byteLength: number): number {
  return Math.ceil(byteLength / 3) * 4;
}

// ---- encoding ----

const ENCODE = new Uint8Array(64);
for (let i = 0; i < 64; i++) ENCODE[i] = ALPHABET.charCodeAt(i);

function encodePortable(src: Uint8Array, dst: Uint8Array, offset: number): number {
  const n = src.length;
  const whole = n - (n % 3);
  let o = offset;
  for (let i = 0; i < whole; i += 3) {
    const v = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
    dst[o] = ENCODE[v >>> 18]!;
    dst[o + 1] = ENCODE[(v >>> 12) & 63]!;
    dst[o + 2] = ENCODE[(v >>> 6) & 63]!;
    dst[o + 3] = ENCODE[v & 63]!;
    o += 4;
  }
  if (whole < n) {
    const v = (src[whole]! << 16) | (whole + 1 < n ? src[whole + 1]! << 8 : 0);
    dst[o] = ENCODE[v >>> 18]!;
    dst[o + 1] = ENCODE[(v >>> 12) & 63]!;
    dst[o + 2] = whole + 1 < n ? ENCODE[(v >>> 6) & 63]! : PAD;
    dst[o + 3] = PAD;
    o += 4;
  }
  return o;
}

function encodeNode(src: Uint8Array, dst: Uint8Array, offset: number): number {
  const from = bufferView(src);
  const to = bufferView(dst);
  let o = offset;
  for (let i = 0; i < src.length; i += BASE64_PIECE_BYTES) {
    o += to.write(from.toString('base64', i, Math.min(i + BASE64_PIECE_BYTES, src.length)), o, 'latin1');
  }
  return o;
}

/**
 * Writes the base64 of `src` into `dst` at `offset` (ASCII bytes); returns the offset after it.
 * `secret`: without the strings Node's codec makes (for a private key).
 * Pieces of a longer text can be encoded one after the other as long as each but the last is a
 * multiple of 3 bytes long.
 */
export function encodeBase64Into(src: Uint8Array, dst: Uint8Array, offset: number, secret = false): number {
  if (dst.length - offset < base64Length(src.length)) throw new RangeError('base64 target too small');
  // Node's codec goes through strings, which cannot be zeroed: never for a `secret` (a private key).
  return NodeBuffer && !secret ? encodeNode(src, dst, offset) : encodePortable(src, dst, offset);
}

// ---- decoding ----

const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/**
 * The bytes that the base64 text in `src[start, end)` decodes to, after checking its length and
 * padding the way base64.ts `decodedLength` checks a string (the alphabet is checked while decoding).
 * @throws SecurityError when it is not well formed.
 */
export function base64SpanLength(src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < 0 || n % 4 !== 0) throw invalid();
  if (n === 0) return 0;
  let pad = 0;
  if (src[end - 1] === PAD) pad = src[end - 2] === PAD ? 2 : 1;
  // Any other '=' is refused while decoding (it is outside the alphabet).
  if (pad > 0) {
    const last = DECODE[src[end - pad - 1]!]!;
    if (last < 0 || (pad === 1 && (last & 0x03) !== 0) || (pad === 2 && (last & 0x0f) !== 0)) throw invalid();
  }
  return (n / 4) * 3 - pad;
}

/** Decodes whole quads of `src[start, end)` (no padding) into `dst` at `o`; false on any byte outside the alphabet. */
function decodeQuadsPortable(src: Uint8Array, start: number, end: number, dst: Uint8Array, o: number): boolean {
  let bad = 0;
  for (let i = start; i < end; i += 4) {
    const a = DECODE[src[i]!]!;
    const b = DECODE[src[i + 1]!]!;
    const c = DECODE[src[i + 2]!]!;
    const d = DECODE[src[i + 3]!]!;
    bad |= a | b | c | d;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    dst[o] = v >>> 16;
    dst[o + 1] = (v >>> 8) & 0xff;
    dst[o + 2] = v & 0xff;
    o += 3;
  }
  return bad >= 0;
}

function decodeQuadsNode(src: Uint8Array, start: number, end: number, dst: Uint8Array, o: number): boolean {
  const from = bufferView(src, start, end);
  // Node's decoder also takes the base64url characters; everything else outside the alphabet
  // (whitespace, '=', bytes above 0x7f) it skips, so a short count is the check for those.
  if (from.indexOf(MINUS) !== -1 || from.indexOf(UNDERSCORE) !== -1) return false;
  const to = bufferView(dst);
  for (let i = 0; i < from.length; i += BASE64_PIECE_CHARS) {
    const j = Math.min(i + BASE64_PIECE_CHARS, from.length);
    if (to.write(from.toString('latin1', i, j), o, 'base64') !== ((j - i) / 4) * 3) return false;
    o += ((j - i) / 4) * 3;
  }
  return true;
}

const decodeQuads = NodeBuffer ? decodeQuadsNode : decodeQuadsPortable;

/** Decodes the final quad of a padded span (two or three characters, then the padding, already checked). */
function decodeLastQuad(src: Uint8Array, at: number, pad: number, dst: Uint8Array, o: number): void {
  const a = DECODE[src[at]!]!;
  const b = DECODE[src[at + 1]!]!;
  const c = pad === 1 ? DECODE[src[at + 2]!]! : 0;
  if ((a | b | c) < 0) throw invalid();
  const v = (a << 18) | (b << 12) | (c << 6);
  dst[o] = v >>> 16;
  if (pad === 1) dst[o + 1] = (v >>> 8) & 0xff;
}

/**
 * Decodes the strict base64 text in `src[start, end)` into `dst` at `offset`; returns the number of
 * bytes written ({@link base64SpanLength}). `dst` may be `src` itself when `offset <= start`: every
 * piece is read before its bytes are written, and never behind where the reading is.
 * `secret`: without the strings Node's codec makes (for a private key).
 * @throws SecurityError for anything base64.ts would refuse; `dst` may then hold part of the bytes.
 */
export function decodeBase64Span(src: Uint8Array, start: number, end: number, dst: Uint8Array, offset: number, secret = false): number {
  const length = base64SpanLength(src, start, end);
  if (dst.length - offset < length) throw new RangeError('base64 target too small');
  const pad = ((end - start) / 4) * 3 - length;
  const whole = pad > 0 ? end - 4 : end;
  // As for encoding: a `secret` never goes through Node's codec and its strings.
  if (!(secret ? decodeQuadsPortable : decodeQuads)(src, start, whole, dst, offset)) throw invalid();
  if (pad > 0) decodeLastQuad(src, whole, pad, dst, offset + ((whole - start) / 4) * 3);
  return length;
}

/** The codecs this runtime can use, each runnable on its own: for tests, which check every one. @internal */
export const base64Codecs = {
  portable: { encode: encodePortable, decodeQuads: decodeQuadsPortable },
  ...(NodeBuffer ? { node: { encode: encodeNode, decodeQuads: decodeQuadsNode } } : {}),
};
