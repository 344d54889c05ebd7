/**
 * The package as bytes, for large payloads: written with the ciphertext's base64 straight into the
 * body, read with the ciphertext located instead of parsed, and opened piece by piece straight into
 * the plaintext's buffer. A 10 MiB payload then needs no 13 MB base64 string, no JSON text of the
 * whole body, and (with `#gcm` streaming) no whole-size ciphertext buffer of its own.
 *
 * Same bytes and same verdicts as the plain way: {@link writeSealedPackage} writes exactly what
 * serializePackage writes; {@link openPackageBody} returns what the plain open (package.ts openWith)
 * returns, and refuses what it refuses with the same error, because it takes the same steps in the
 * same order (PackageOpener), the base64 read from the body instead of a string. The
 * version-specific checks and keys stay with each version (package.ts, v2.ts).
 */
import { GCM_TAG_BYTES } from './constants.js';
import { decodeBase64Into, decodedLength, encodeBase64 } from './base64.js';
import { base64Length, base64SpanLength, decodeBase64Span, encodeBase64Into } from './base64-bytes.js';
import { byteKinds } from './json-escapes.js';
import { findLongStrings, standIn, textDecoders } from './json-bytes.js';
import { serializePackage, type AnswerPackage, type EncryptedPackage, type PackageOpener, type Sealing } from './package.js';
import { aesGcmOpen } from '../crypto/aes-gcm.js';
import { gcmPieces } from '../crypto/gcm/select.js';
import { GCM_PIECE_BYTES, type PieceSink } from '../crypto/gcm/types.js';
import type { Bytes } from '../crypto/subtle.js';

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
  /** The ciphertext's base64: bytes [start, end) of the body, printable ASCII with no escapes. */
  span?: { start: number; end: number };
}

function readPlain(body: Uint8Array, text: BodyText): PackageBody {
  return { pkg: text.parse(textDecoders(text.fatal).text.decode(body)) };
}

/**
 * Reads a package body: its JSON parsed with the one long string, the ciphertext, left out (a random
 * stand-in in its place), or the plain way (no long string or more than one, one with escapes, one
 * with a byte that is not printable ASCII, one that is not `encrypted_payload.ciphertext`, a skeleton
 * that does not parse). Throws what `text.parse(decode(body))` throws. Open it with
 * {@link openPackageBody}; read only the other fields.
 *
 * A literal with a control byte or a byte above 0x7f goes the plain way because there the text
 * decoder and JSON.parse judge it first (not UTF-8, not JSON), before any base64 is looked at: left
 * in the span, it would be refused as base64 instead, with another error.
 */
export function readPackageBody(body: Uint8Array, text: BodyText): PackageBody {
  if (body.length < MIN_LOCATED_BODY) return readPlain(body, text);
  const literals = findLongStrings(body, MIN_LOCATED_CIPHERTEXT);
  const literal = literals?.length === 1 ? literals[0]! : undefined;
  if (!literal || byteKinds(body, literal.start, literal.end) !== 0) return readPlain(body, text);
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

/** A body opened: the plaintext (the caller zeroes it) and what the opener hands back besides. */
export type OpenedBody<T extends object> = { plaintext: Uint8Array } & T;

/**
 * Opens a body read with {@link readPackageBody}: the plaintext and verdict of `openWith(opener,
 * parse(decode(body)))`, by the same steps in the same order (see PackageOpener): the checks, the
 * ciphertext's base64 (decoded straight out of the body), the key work, the decryption. Where `#gcm`
 * streams, the ciphertext is decoded into a buffer from `buffers` and decrypted there, in place, and
 * that buffer is the plaintext's (free it with `buffers.free`); else the plaintext is Web Crypto's own
 * buffer. The caller zeroes the plaintext either way; `body` holds ciphertext only and is not written.
 */
export async function openPackageBody<T extends object>(body: Uint8Array, read: PackageBody, opener: PackageOpener<T>, buffers: PlaintextBuffers): Promise<OpenedBody<T>> {
  const checked = opener.check(read.pkg);
  const gcm = await gcmPieces();
  const length = read.span ? base64SpanLength(body, read.span.start, read.span.end) : decodedLength(ciphertextField(read.pkg));
  // Streaming: decrypted where it is decoded. Else Web Crypto wants ciphertext||tag in one buffer.
  const target = gcm.streaming ? buffers.alloc(length) : new Uint8Array(length + GCM_TAG_BYTES);
  try {
    if (read.span) decodeBase64Span(body, read.span.start, read.span.end, target, 0);
    else decodeBase64Into(ciphertextField(read.pkg), target);
    const { key, aad, ...rest } = await checked.keys();
    let plaintext: Uint8Array;
    if (gcm.streaming) {
      plaintext = await gcm.open(key, checked.nonce, aad, checked.tag, length, pieces(target, length), target);
      if (plaintext !== target) buffers.free(target);
    } else {
      target.set(checked.tag, length);
      plaintext = await aesGcmOpen(key, checked.nonce, target as Bytes, aad);
    }
    return { plaintext, ...(rest as unknown as T) };
  } catch (err) {
    // Ciphertext, or plaintext gcm.open has already zeroed: back it goes.
    if (gcm.streaming) buffers.free(target);
    throw err;
  }
}

/**
 * {@link openPackageBody} for a body nothing will read again (a router's request, its buffer its
 * own): the ciphertext is decoded into the body's own buffer from its start (each piece lands before
 * the base64 it came from) and decrypted there, so opening needs no second buffer. Returns the
 * plaintext, a view of `body` at its start: the caller zeroes it. The same steps, order and verdicts
 * as openPackageBody; on failure the body holds ciphertext (or zeros) only.
 *
 * Returns undefined, before doing anything, where it does not apply: no located ciphertext, or a
 * cipher that does not stream. Open such a body with openPackageBody.
 */
export async function openPackageBodyInPlace<T extends object>(body: Uint8Array, read: PackageBody, opener: PackageOpener<T>): Promise<OpenedBody<T> | undefined> {
  const { pkg, span } = read;
  const gcm = await gcmPieces();
  if (!span || !gcm.streaming) return undefined;
  const checked = opener.check(pkg);
  const length = decodeBase64Span(body, span.start, span.end, body, 0);
  const { key, aad, ...rest } = await checked.keys();
  // On failure gcm.open zeroes what it wrote: no unauthenticated plaintext stays in the body.
  const plaintext = await gcm.open(key, checked.nonce, aad, checked.tag, length, pieces(body, length), body.subarray(0, length));
  return { plaintext, ...(rest as unknown as T) };
}

/** `encrypted_payload.ciphertext` of a package its opener has checked: a string. */
function ciphertextField(pkg: unknown): string {
  return (pkg as { encrypted_payload: { ciphertext: string } }).encrypted_payload.ciphertext;
}

/** Feeds `bytes[0, length)` to a cipher in pieces: decrypting in place, each piece is read before it is written over. */
function pieces(bytes: Uint8Array, length: number): (sink: PieceSink) => void {
  return (sink) => {
    for (let at = 0; at < length; at += GCM_PIECE_BYTES) sink(bytes.subarray(at, Math.min(at + GCM_PIECE_BYTES, length)));
  };
}
