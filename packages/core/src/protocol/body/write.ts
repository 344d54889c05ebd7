/**
 * A package written as bytes: the ciphertext's base64 straight into the body as the cipher gives it
 * out, byte for byte what `serializePackage(await sealWith(sealing, plaintext))` writes, with no
 * base64 string and no JSON text of the whole body. In place: over its own plaintext.
 */
import { encodeBase64 } from '../base64.js';
import { encodeBase64Into } from '../base64-bytes.js';
import type { Sealing } from '../package.js';
import { gcmPieces } from '../../crypto/gcm/select.js';
import { head, type ByteSource, type OwnedBytes } from '../../memory/owned-bytes.js';
import { bodyLength, packageLayout, TAG_MARK, type PackageLayout } from './layout.js';

const encoder = new TextEncoder();

function put(text: string, into: Uint8Array, at: number): number {
  const { read, written } = encoder.encodeInto(text, into.subarray(at));
  if (read !== text.length) throw new RangeError('package buffer too small');
  return at + written;
}

/** Seals `plaintext` and writes the body into `buffer` from its start; returns the body's length. */
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

/** Seals `plaintext` as `sealing` says into a body taken from `into` (the caller releases it); the caller zeroes `plaintext`. */
export async function writeSealedPackage(sealing: Sealing, plaintext: Uint8Array, into: ByteSource): Promise<OwnedBytes> {
  const layout = packageLayout(sealing);
  const body = into.take(bodyLength(layout, plaintext.length));
  try {
    return head(body, await sealInto(sealing, layout, plaintext, body.bytes));
  } catch (err) {
    body.release();
    throw err;
  }
}

/**
 * {@link writeSealedPackage} for a plaintext already in the buffer the body goes into, `length` bytes
 * at `start` (as layout.ts inPlaceRoom places it): a request or answer then needs one buffer, not
 * two. Same bytes. The plaintext is read piece by piece before its place is written over, and what is
 * left of it past the body's end is zeroed (the buffer may be handed on whole: to a fetch option, to
 * a pool that does not zero); on failure everything up to the plaintext's end is. Returns the body's
 * length, or undefined (and nothing written) when the buffer has no room for this package around the
 * plaintext.
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
