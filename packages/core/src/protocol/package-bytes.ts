/**
 * The package as bytes, for large payloads: written with the ciphertext's base64 straight into the
 * body, read with the ciphertext located instead of parsed, and opened piece by piece straight into
 * the plaintext's buffer. A 10 MiB payload then needs no 13 MB base64 string, no JSON text of the
 * whole body, and (with `#gcm` streaming) no whole-size ciphertext buffer of its own.
 *
 * Same bytes and same verdicts as the plain way: {@link writeSealedPackage} writes exactly what
 * serializePackage writes; {@link openPackageBody} returns what the plain open returns, and refuses
 * what it refuses with the same error, because on any failure it runs the plain way and throws its
 * error. The version-specific checks and keys stay with each version (package.ts, v2.ts).
 */
import { GCM_TAG_BYTES } from './constants.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import { BASE64_PIECE_BYTES, base64Length, base64SpanLength, decodeBase64Pieces, encodeBase64Into } from './base64-bytes.js';
import { findLongStrings, standIn, textDecoders } from './json-bytes.js';
import { serializePackage, type AnswerPackage, type EncryptedPackage, type Opening, type Sealing } from './package.js';
import { gcmPieces } from '../crypto/gcm/select.js';
import type { GcmPieces } from '../crypto/gcm/types.js';

/** Bodies shorter than this are read the plain way: locating the ciphertext would save nothing. */
export const MIN_LOCATED_BODY = 16 * 1024;
/** The ciphertext is located when its base64 is at least this long (the other fields are short). */
const MIN_LOCATED_CIPHERTEXT = 4 * 1024;

const encoder = new TextEncoder();

function put(text: string, into: Uint8Array, at: number): number {
  const { read, written } = encoder.encodeInto(text, into.subarray(at));
  if (read !== text.length) throw new RangeError('package buffer too small');
  return at + written;
}

/** Stands where the tag goes in a layout's tail: as long as the tag's base64, and never in serializePackage's output. */
const TAG_MARK = '\u0001'.repeat(base64Length(GCM_TAG_BYTES));

/** A package body around its ciphertext: the JSON before it, and after it (with {@link TAG_MARK}), and their lengths in bytes. */
interface PackageLayout {
  head: string;
  tail: string;
  headBytes: number;
  tailBytes: number;
}

function packageLayout({ fields, params }: Sealing): PackageLayout {
  // The layout comes from serializePackage itself, with marks where the ciphertext and the tag go:
  // neither can occur in its output (labels are JSON-escaped, the rest is base64).
  const ciphertextMark = '\u0000';
  const template = serializePackage({
    ...fields,
    encrypted_payload: { ciphertext: ciphertextMark, nonce: encodeBase64(params.nonce), tag: TAG_MARK },
  } as EncryptedPackage | AnswerPackage);
  const split = template.indexOf(ciphertextMark);
  const head = template.slice(0, split);
  const tail = template.slice(split + 1);
  return { head, tail, headBytes: encoder.encode(head).length, tailBytes: encoder.encode(tail).length };
}

function bodyLength(layout: PackageLayout, plaintextLength: number): number {
  return layout.headBytes + base64Length(plaintextLength) + layout.tailBytes;
}

/** Seals `plaintext` and writes the body into `buffer` from its start, the ciphertext's base64 as the cipher gives it out; returns the body's length. */
async function sealInto({ params }: Sealing, layout: PackageLayout, plaintext: Uint8Array, buffer: Uint8Array): Promise<number> {
  let at = put(layout.head, buffer, 0);
  const gcm = await gcmPieces();
  const tag = await gcm.seal(params.key, params.nonce, params.aad, plaintext, (piece) => {
    at = encodeBase64Into(piece, buffer, at);
  });
  at = put(layout.tail.replace(TAG_MARK, encodeBase64(tag)), buffer, at);
  if (at !== bodyLength(layout, plaintext.length)) throw new RangeError('package length mismatch');
  return at;
}

/**
 * Seals `plaintext` as `sealing` says and writes the package body into one buffer from `alloc`: byte
 * for byte what `serializePackage(await sealWith(sealing, plaintext))` writes, the ciphertext's base64
 * written as the cipher gives it out. Returns the buffer and the body's length in it.
 */
export async function writeSealedPackage(sealing: Sealing, plaintext: Uint8Array, alloc: (size: number) => Uint8Array): Promise<{ buffer: Uint8Array; length: number }> {
  const layout = packageLayout(sealing);
  const buffer = alloc(bodyLength(layout, plaintext.length));
  return { buffer, length: await sealInto(sealing, layout, plaintext, buffer) };
}

/**
 * Plaintexts and bodies from this size on are sealed and opened in place where the caller can (one
 * buffer where two were). Below it a second buffer costs next to nothing, and the room in place
 * needs around a package (below) would be most of the allocation.
 */
export const MIN_IN_PLACE_BYTES = 64 * 1024;

/**
 * Room for a package body's JSON around its ciphertext, for {@link inPlaceRoom}: more than ours ever
 * take (about 90 bytes before it; after it, some 130 and the wrapped key's base64, 684 bytes for an
 * RSA-4096 router key, 2,732 for RSA-16384). A router key larger still: no room, the usual way.
 */
const HEAD_ROOM = 256;
const TAIL_ROOM = 4096;

/**
 * Room to seal a plaintext of at most `size` bytes in place ({@link writeSealedPackageInPlace}), known
 * before the package's keys are: the buffer's size, and where in it the plaintext goes. The base64
 * written from the buffer's start grows by a third on the plaintext behind it: starting a third of
 * the plaintext past the JSON head, it never reaches a piece not yet sealed.
 */
export function inPlaceRoom(size: number): { bytes: number; start: number } {
  const start = HEAD_ROOM + Math.ceil(size / 3);
  return { bytes: start + size + TAIL_ROOM, start };
}

/**
 * {@link writeSealedPackage} for a plaintext already in the buffer the body goes into, `length`
 * bytes at `start` (as {@link inPlaceRoom} places it): a request or answer then needs one buffer,
 * not two. Same bytes. The plaintext is read piece by piece before its place is written over, and
 * what is left of it past the body's end is zeroed (the buffer may be handed on whole: to a fetch
 * option, to a pool that does not zero); on failure everything up to the plaintext's end is.
 * Returns the body's length, or undefined (and nothing written) when the buffer has no room for this
 * package around the plaintext.
 */
export async function writeSealedPackageInPlace(sealing: Sealing, buffer: Uint8Array, start: number, length: number): Promise<number | undefined> {
  const layout = packageLayout(sealing);
  if (start < layout.headBytes + Math.ceil(length / 3) || start + length > buffer.length || bodyLength(layout, length) > buffer.length) return undefined;
  const end = start + length;
  try {
    const written = await sealInto(sealing, layout, buffer.subarray(start, end), buffer);
    buffer.fill(0, written, Math.max(written, end));
    return written;
  } catch (err) {
    // Sealing stopped part way: plaintext may be anywhere up to where it ended.
    buffer.fill(0, 0, end);
    throw err;
  }
}

/** How a body's text is read the plain way: `parse(decode(body))`. */
export interface BodyText {
  /** Refuse bytes that are not UTF-8 (a router reading requests), or read them as U+FFFD (fetch's Response.text()). */
  fatal: boolean;
  /** JSON.parse and the errors the caller maps it to. */
  parse(text: string): unknown;
}

/** How one version opens its packages: the checks and key (all but the payload), and the plain way as a whole. */
export interface PackageOpener {
  /**
   * Checks the parsed package and decodes all but the ciphertext (package.ts v1Opening, v2.ts); its
   * ciphertext may be a stand-in. Where the ciphertext is strict base64, refuses exactly what
   * `openPlain` refuses, with the same error: the same checks in the same order, the ciphertext's left out.
   */
  prepare(pkg: unknown): Promise<Opening>;
  /** The plain open of a parsed package (openPackage, openAnswerV2, ...): the plaintext in a buffer of its own. */
  openPlain(pkg: unknown): Promise<Uint8Array>;
}

/** Where the plaintext goes: secure memory on the client. */
export interface PlaintextBuffers {
  alloc(size: number): Uint8Array;
  /** Zeroes and gives back a buffer from `alloc`. */
  free(buffer: Uint8Array): void;
}

/** A body read: the parsed package, and where its ciphertext is when it was left out of the parse. */
export interface PackageBody {
  /** `parse(decode(body))`, except that `encrypted_payload.ciphertext` is a stand-in when `span` is set. */
  pkg: unknown;
  /** The ciphertext's base64: bytes [start, end) of the body, no escapes. */
  span?: { start: number; end: number };
}

function readPlain(body: Uint8Array, text: BodyText): PackageBody {
  return { pkg: text.parse(textDecoders(text.fatal).text.decode(body)) };
}

/**
 * Reads a package body: its JSON parsed with the one long string, the ciphertext, left out (a random
 * stand-in in its place), or the plain way (no long string or more than one, one with escapes, one
 * that is not `encrypted_payload.ciphertext`, a skeleton that does not parse). Throws what
 * `text.parse(decode(body))` throws. Open it with {@link openPackageBody}; read only the other fields.
 */
export function readPackageBody(body: Uint8Array, text: BodyText): PackageBody {
  if (body.length < MIN_LOCATED_BODY) return readPlain(body, text);
  const literals = findLongStrings(body, MIN_LOCATED_CIPHERTEXT);
  const literal = literals?.length === 1 ? literals[0]! : undefined;
  if (!literal) return readPlain(body, text);
  const decoders = textDecoders(text.fatal);
  const prefix = standIn();
  let pkg: unknown;
  try {
    const escaped = JSON.stringify(prefix).slice(1, -1);
    pkg = text.parse(decoders.text.decode(body.subarray(0, literal.start)) + escaped + decoders.contents.decode(body.subarray(literal.end)));
  } catch {
    return readPlain(body, text);
  }
  const ep = (pkg as { encrypted_payload?: unknown } | null)?.encrypted_payload;
  if (typeof ep !== 'object' || ep === null || (ep as { ciphertext?: unknown }).ciphertext !== prefix) return readPlain(body, text);
  return { pkg, span: { start: literal.start, end: literal.end } };
}

/** Ciphertext pieces on their way to the cipher (not secret); used within one synchronous call at a time. */
const scratch = new Uint8Array(BASE64_PIECE_BYTES);

/**
 * Opens a body read with {@link readPackageBody}: `opener.openPlain(parse(decode(body)))`, the same
 * value or the same error. Where `#gcm` streams, the plaintext is decrypted straight into a buffer
 * from `buffers` (returned: free it with `buffers.free`), else it is Web Crypto's own buffer. The
 * caller zeroes the plaintext either way; `body` holds ciphertext only.
 */
export async function openPackageBody(body: Uint8Array, read: PackageBody, text: BodyText, opener: PackageOpener, buffers: PlaintextBuffers): Promise<Uint8Array> {
  const gcm = await gcmPieces();
  if (!read.span) return gcm.streaming ? openParsed(read.pkg, gcm, opener, buffers) : opener.openPlain(read.pkg);
  const { pkg, span } = read;
  let target: Uint8Array | undefined;
  try {
    const { key, nonce, aad, tag } = await opener.prepare(pkg);
    const length = base64SpanLength(body, span.start, span.end);
    if (gcm.streaming) target = buffers.alloc(length);
    const plaintext = await gcm.open(key, nonce, aad, tag, length, (sink) => decodeBase64Pieces(body, span.start, span.end, scratch, sink), target ?? new Uint8Array(0));
    // Web Crypto's own buffer when this key could not be streamed: the target went unused.
    if (target && plaintext !== target) buffers.free(target);
    target = undefined;
    return plaintext;
  } catch {
    // The plain way, for its exact verdict (the body is as it came: only `target` was written).
    if (target) buffers.free(target);
    return opener.openPlain(readPlain(body, text).pkg);
  }
}

/**
 * A package parsed whole (a small body), opened by a streaming `#gcm` straight into a buffer from
 * `buffers`: no trip to Web Crypto's thread pool, and no plaintext buffer outside `buffers` (secure
 * memory, on the client). Same verdicts as `opener.openPlain`, with no work done twice: a ciphertext
 * that is not strict base64 goes the plain way, which refuses it before any key work; with one that
 * is, `prepare` fails exactly where openPlain would (the same checks in the same order: see
 * {@link PackageOpener}), and a tag that does not match is the one opaque error either way.
 */
async function openParsed(pkg: unknown, gcm: GcmPieces, opener: PackageOpener, buffers: PlaintextBuffers): Promise<Uint8Array> {
  const ciphertext = strictCiphertext(pkg);
  if (!ciphertext) return opener.openPlain(pkg);
  const { key, nonce, aad, tag } = await opener.prepare(pkg);
  const target = buffers.alloc(ciphertext.length);
  try {
    const plaintext = await gcm.open(key, nonce, aad, tag, ciphertext.length, (sink) => sink(ciphertext), target);
    if (plaintext !== target) buffers.free(target);
    return plaintext;
  } catch (err) {
    buffers.free(target);
    throw err;
  }
}

/** `encrypted_payload.ciphertext` decoded as the plain way decodes it; undefined when it is not a string of strict base64. */
function strictCiphertext(pkg: unknown): Uint8Array | undefined {
  const ciphertext = (pkg as { encrypted_payload?: { ciphertext?: unknown } } | null)?.encrypted_payload?.ciphertext;
  if (typeof ciphertext !== 'string') return undefined;
  try {
    return decodeBase64(ciphertext);
  } catch {
    return undefined;
  }
}

/**
 * {@link openPackageBody} for a body nothing will read again (a router's request, its buffer its
 * own): the plaintext is decrypted into the body's own buffer from its start, each piece landing
 * before the base64 it came from, so opening needs no second buffer. Returns the plaintext, a view of
 * `body` (or, where the key does not stream, Web Crypto's own buffer): the caller zeroes it.
 *
 * The verdict is openPackageBody's. Where it could differ this returns undefined, with the body as
 * it came or as good, to be opened the usual way: no located ciphertext, a cipher that does not
 * stream, any failure before decryption starts (whose order differs from the plain way's), and a
 * byte outside the base64 alphabet. That last one is found part way, with pieces before it already
 * decrypted where the head and their base64 were; the plain way would refuse the body for what comes
 * from that byte on (as text, as JSON, or as base64), never for the base64 before it, which was
 * all alphabet: so the head is put back and that base64 stands in as "A"s. A tag that does not
 * match fails here as it would there.
 */
export async function openPackageBodyInPlace(body: Uint8Array, read: PackageBody, opener: PackageOpener): Promise<Uint8Array | undefined> {
  const { pkg, span } = read;
  if (!span) return undefined;
  const gcm = await gcmPieces();
  if (!gcm.streaming) return undefined;
  let opening: Opening;
  let length: number;
  try {
    opening = await opener.prepare(pkg);
    length = base64SpanLength(body, span.start, span.end);
  } catch {
    return undefined;
  }
  const { key, nonce, aad, tag } = opening;
  const head = body.slice(0, span.start);
  let decoded = 0;
  let badBase64 = false;
  const feed = (sink: (piece: Uint8Array) => void) => {
    try {
      decodeBase64Pieces(body, span.start, span.end, scratch, (piece) => {
        sink(piece);
        decoded += piece.length;
      });
    } catch (err) {
      badBase64 = true;
      throw err;
    }
  };
  try {
    // On failure gcm.open zeroes what it wrote: no unauthenticated plaintext stays in the body.
    return await gcm.open(key, nonce, aad, tag, length, feed, body.subarray(0, length));
  } catch (err) {
    if (!badBase64) throw err;
    body.set(head, 0);
    // Whole pieces of 3 bytes each went to the cipher: 4 base64 characters for every 3.
    body.fill(0x41, span.start, span.start + (decoded / 3) * 4);
    return undefined;
  }
}
