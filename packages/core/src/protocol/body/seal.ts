/**
 * Sealing a body, one way in: the façade the client (a request) and the router (an answer) call.
 * A plaintext placed with room around it (layout.ts sealablePlaintexts) is sealed where it is;
 * anything else into a buffer of its own from `into`.
 */
import type { Sealing } from '../package.js';
import { owned, type ByteSource, type OwnedBytes } from '../../memory/owned-bytes.js';
import { writeSealedPackage, writeSealedPackageInPlace } from './write.js';

/**
 * The package body of `plaintext`, sealed as `sealing` says: byte for byte what
 * `serializePackage(await sealWith(sealing, plaintext.bytes))` writes. Takes `plaintext` over: it is
 * released here, or becomes the body's buffer (then the body's release gives it back). The body holds
 * ciphertext only.
 */
export async function sealBody(sealing: Sealing, plaintext: OwnedBytes, into: ByteSource): Promise<OwnedBytes> {
  const { placement } = plaintext;
  let sealedInPlace = false;
  try {
    if (placement) {
      const length = await writeSealedPackageInPlace(sealing, placement.buffer, placement.offset, plaintext.bytes.length);
      if (length !== undefined) {
        sealedInPlace = true;
        // Nothing of the plaintext is left in the buffer: it goes back as it is, once the body is sent.
        return owned(placement.buffer.subarray(0, length), false, placement.releaseSealed);
      }
    }
    return await writeSealedPackage(sealing, plaintext.bytes, into);
  } finally {
    if (!sealedInPlace) plaintext.release();
  }
}
