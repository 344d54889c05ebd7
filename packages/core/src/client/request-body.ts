/**
 * Where a request's and its answer's bodies are written and read. A large request is sealed in place
 * (serialized, in secure memory, where its package can be written around it) and a large answer read
 * into secure memory to be opened where it is: one buffer each, not two, and the buffer the request
 * leaves can take the answer. Small bodies hold ciphertext only and use the shared wire buffers.
 */
import type { Sealing } from '../protocol/package.js';
import { MIN_IN_PLACE_BYTES, writeSealedPackage, writeSealedPackageInPlace } from '../protocol/package-bytes.js';
import type { SecureByteContext } from '../memory/context.js';
import { wireBufferSource } from '../memory/wire-buffers.js';
import type { ByteBufferSource } from '../transport/http.js';

/** A sealed request body, and how to be done with it once sent. */
export interface SealedRequest {
  body: Uint8Array;
  free(): void;
}

/**
 * Where an answer body is read into: a large one into secure memory, to be opened where it is (its
 * plaintext then needs no buffer of its own, and the buffer a large request left can take it); a
 * small one, ciphertext only, into the shared wire buffers.
 */
export function answerBodyBuffers(ctx: SecureByteContext): ByteBufferSource & { secure(buffer: Uint8Array): boolean } {
  const secure = new WeakSet<Uint8Array>();
  return {
    alloc: (size) => {
      if (size < MIN_IN_PLACE_BYTES) return wireBufferSource.alloc(size);
      const bytes = ctx.alloc(size);
      secure.add(bytes);
      return bytes;
    },
    free: (bytes) => (secure.delete(bytes) ? ctx.release(bytes) : wireBufferSource.free(bytes)),
    secure: (bytes) => secure.has(bytes),
  };
}

/**
 * Seals `bytes` (a plaintext from ctx): in place when they were serialized where that fits
 * (serializePayload's `inPlace`), and then the body's `free` releases them; else into a wire
 * buffer, and they are released here.
 */
export async function sealRequest(ctx: SecureByteContext, sealing: Sealing, bytes: Uint8Array): Promise<SealedRequest> {
  const placed = ctx.placement(bytes);
  // Serialized in place: the plaintext sits past the room for the package head.
  if (placed && placed.start > 0) {
    let length: number | undefined;
    try {
      length = await writeSealedPackageInPlace(sealing, placed.whole, placed.start, bytes.length);
    } catch (err) {
      ctx.release(bytes);
      throw err;
    }
    // Nothing but the body is left in the buffer (the rest of the plaintext was zeroed).
    if (length !== undefined) return { body: placed.whole.subarray(0, length), free: () => ctx.release(bytes) };
  }
  const request = await ctx.use(bytes, (b) => writeSealedPackage(sealing, b, wireBufferSource.alloc));
  return { body: request.buffer.subarray(0, request.length), free: () => wireBufferSource.free(request.buffer) };
}
