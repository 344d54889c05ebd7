/**
 * Where a package body's bytes go: its JSON around the ciphertext (from serializePackage itself), its
 * length, and the room a plaintext needs around it to be sealed in place.
 */
import { GCM_TAG_BYTES } from '../constants.js';
import { encodeBase64 } from '../base64.js';
import { base64Length } from '../base64-bytes.js';
import { serializePackage, type AnswerPackage, type EncryptedPackage, type Sealing } from '../package.js';
import { owned, type ByteSource } from '../../memory/owned-bytes.js';
import { LARGE_BODY_BYTES } from '../../sizes.js';

const encoder = new TextEncoder();

/** Stands where the tag goes in a layout's tail: as long as the tag's base64, and never in serializePackage's output. */
export const TAG_MARK = '\u0001'.repeat(base64Length(GCM_TAG_BYTES));

/** A package body around its ciphertext: the JSON before it, and after it (with {@link TAG_MARK}), and their lengths in bytes. */
export interface PackageLayout {
  head: string;
  tail: string;
  headBytes: number;
  tailBytes: number;
}

export function packageLayout({ fields, params }: Sealing): PackageLayout {
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

/** The body's length in bytes for a plaintext of `plaintextLength` bytes. */
export function bodyLength(layout: PackageLayout, plaintextLength: number): number {
  return layout.headBytes + base64Length(plaintextLength) + layout.tailBytes;
}

/**
 * Room for a package body's JSON around its ciphertext, for {@link inPlaceRoom}: more than ours ever
 * take (about 90 bytes before it; after it, some 130 and the wrapped key's base64, 684 bytes for an
 * RSA-4096 router key, 2,732 for RSA-16384). A router key larger still: no room, sealed the usual way.
 */
const HEAD_ROOM = 256;
const TAIL_ROOM = 4096;

/**
 * Room to seal a plaintext of at most `size` bytes in place (write.ts writeSealedPackageInPlace),
 * known before the package's keys are: the buffer's size, and where in it the plaintext goes. The
 * base64 written from the buffer's start grows by a third on the plaintext behind it: starting a
 * third of the plaintext past the JSON head, it never reaches a piece not yet sealed.
 */
export function inPlaceRoom(size: number): { bytes: number; start: number } {
  const start = HEAD_ROOM + Math.ceil(size / 3);
  return { bytes: start + size + TAIL_ROOM, start };
}

/**
 * Where a plaintext that is to be sealed goes: a small one in `small`; a large one (LARGE_BODY_BYTES)
 * in a buffer from `large`, placed as {@link inPlaceRoom} says, so that seal.ts can seal its package
 * around it (see OwnedBytes.placement). What it gives may hold the plaintext: released, a placed
 * plaintext is zeroed here when `large` does not zero (the wire buffers).
 */
export function sealablePlaintexts(small: ByteSource, large: ByteSource): ByteSource {
  return {
    secure: true,
    take(size) {
      if (size < LARGE_BODY_BYTES) return small.take(size);
      const { bytes, start } = inPlaceRoom(size);
      const whole = large.take(bytes);
      const view = whole.bytes.subarray(start, start + size);
      // Released either way, once: zeroed, or as sealed (nothing of the plaintext left in it).
      let released = false;
      const release = (sealed: boolean) => {
        if (released) return;
        released = true;
        if (!sealed && !large.secure) view.fill(0);
        whole.release();
      };
      return owned(view, true, () => release(false), { buffer: whole.bytes, offset: start, releaseSealed: () => release(true) });
    },
  };
}
