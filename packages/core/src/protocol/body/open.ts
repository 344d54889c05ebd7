/**
 * Opening a body, one way in: the façade the client (an answer) and the router (a request) call. It
 * reads the body (read.ts) and opens it as `opener` says, in the one order every way keeps (package.ts
 * PackageOpener: checks, ciphertext, keys, decryption), so its verdicts are openWith's on
 * `parse(decode(body))`: test/protocol/body/open-differential.test.ts holds it to that. How it opens
 * is its own choice:
 * - in place: the ciphertext decoded into the body's own buffer from its start (each piece lands
 *   before the base64 it came from) and decrypted there: no second buffer;
 * - into a buffer from `plaintexts`, decoded there and decrypted in place;
 * - Web Crypto's one call, where `#gcm` does not stream (browsers): the plaintext in its own buffer.
 */
import { GCM_TAG_BYTES } from '../constants.js';
import { decodeBase64Into, decodedLength } from '../base64.js';
import { base64SpanLength, decodeBase64Span } from '../base64-bytes.js';
import type { PackageOpener } from '../package.js';
import { aesGcmOpen } from '../../crypto/aes-gcm.js';
import { gcmPieces } from '../../crypto/gcm/select.js';
import { GCM_PIECE_BYTES, webCryptoKey, type PieceSink } from '../../crypto/gcm/types.js';
import type { Bytes } from '../../crypto/subtle.js';
import { head, owned, type ByteSource, type OwnedBytes } from '../../memory/owned-bytes.js';
import { readPackageBody, type BodyText, type PackageBody } from './read.js';

/** A body opened: its package (for its unsealed fields, such as `processed_at`), the plaintext, and what the opener hands back besides. */
export type OpenedBody<T extends object> = { pkg: unknown; plaintext: OwnedBytes } & T;

export interface BodyOpening<T extends object> {
  text: BodyText;
  /** The body as readPackageBody read it already (a router that needed its version first); else read here. */
  read?: PackageBody | undefined;
  opener: PackageOpener<T>;
  /** Where the plaintext goes when it does not go where the body is: secure memory on the client. */
  plaintexts: ByteSource;
  /** The body's buffer is the caller's alone and may take the plaintext (zeroed when released, see below). */
  inPlace: boolean;
}

/**
 * Opens `body`: the plaintext (release it: zeroed) and what the opener hands back. Takes `body` over:
 * released here, or, opened in place, it becomes the plaintext's buffer, which its release zeroes
 * and gives back. Every failure is the error the exact way gives.
 */
export async function openBody<T extends object>(body: OwnedBytes, how: BodyOpening<T>): Promise<OpenedBody<T>> {
  let handedOn = false;
  try {
    const read = how.read ?? readPackageBody(body.bytes, how.text);
    const gcm = await gcmPieces();
    if (read.span && how.inPlace && gcm.streaming) {
      const opened = await openInPlace(body.bytes, read, how.opener);
      handedOn = true;
      const { plaintext, ...rest } = opened;
      // The body's own buffer: zeroed here when it does not zero itself (a router's wire buffer), then given back.
      const inPlace = owned(plaintext, true, () => {
        if (!body.secure) plaintext.fill(0);
        body.release();
      });
      return { pkg: read.pkg, plaintext: inPlace, ...(rest as unknown as T) };
    }
    return { pkg: read.pkg, ...(await openInto(body.bytes, read, how.opener, how.plaintexts)) };
  } finally {
    if (!handedOn) body.release();
  }
}

/** Decodes the ciphertext into a buffer from `plaintexts` and decrypts it there (Web Crypto: into its own buffer). */
async function openInto<T extends object>(body: Uint8Array, read: PackageBody, opener: PackageOpener<T>, plaintexts: ByteSource): Promise<{ plaintext: OwnedBytes } & T> {
  const checked = opener.check(read.pkg);
  const gcm = await gcmPieces();
  const length = read.span ? base64SpanLength(body, read.span.start, read.span.end) : decodedLength(ciphertextField(read.pkg));
  const decode = (into: Uint8Array) => (read.span ? decodeBase64Span(body, read.span.start, read.span.end, into, 0) : decodeBase64Into(ciphertextField(read.pkg), into));
  if (!gcm.streaming) {
    // Web Crypto wants ciphertext||tag in one buffer, and gives the plaintext in one of its own.
    const sealed = new Uint8Array(length + GCM_TAG_BYTES);
    decode(sealed);
    sealed.set(checked.tag, length);
    const { key, aad, ...rest } = await checked.keys();
    const plaintext = await aesGcmOpen(webCryptoKey(key), checked.nonce, sealed as Bytes, aad);
    // Left where Web Crypto put it (no copy): outside Node.js no memory is locked anyway.
    return { plaintext: owned(plaintext, true, () => plaintext.fill(0)), ...(rest as unknown as T) };
  }
  const target = plaintexts.take(length);
  try {
    decode(target.bytes);
    const { key, aad, ...rest } = await checked.keys();
    // On failure gcm.open zeroes what it wrote.
    const plaintext = await gcm.open(key, checked.nonce, aad, checked.tag, length, pieces(target.bytes, length), target.bytes);
    return { plaintext: head(target, plaintext.length), ...(rest as unknown as T) };
  } catch (err) {
    target.release();
    throw err;
  }
}

/**
 * Opens a located body in its own buffer: the ciphertext decoded from its start and decrypted there.
 * Returns the plaintext, a view of `body` at its start. On failure the body holds ciphertext (or zeros) only.
 */
async function openInPlace<T extends object>(body: Uint8Array, read: PackageBody, opener: PackageOpener<T>): Promise<{ plaintext: Uint8Array<ArrayBuffer> } & T> {
  const { span } = read as Required<PackageBody>;
  const checked = opener.check(read.pkg);
  const length = decodeBase64Span(body, span.start, span.end, body, 0);
  const { key, aad, ...rest } = await checked.keys();
  const gcm = await gcmPieces();
  // On failure gcm.open zeroes what it wrote: no unauthenticated plaintext stays in the body.
  const plaintext = await gcm.open(key, checked.nonce, aad, checked.tag, length, pieces(body, length), body.subarray(0, length));
  return { plaintext: plaintext as Uint8Array<ArrayBuffer>, ...(rest as unknown as T) };
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
