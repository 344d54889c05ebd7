/**
 * Buffers for package bodies on the wire: a request body as it is written, an answer body as it is
 * read. They only ever hold ciphertext (base64 and labels), so they are not zeroed and not locked;
 * reusing them means large requests in a row touch no new pages for their bodies. Plaintext never
 * goes in here (it has secure memory), so a body buffer handed to fetch and reused later can never
 * put a secret on the wire. Shared by every client of the process; bounded like the secure pool.
 */
import { SecureBufferPool } from './secure-pool.js';

export const wireBuffers = new SecureBufferPool({ allocate: (size) => new Uint8Array(size), release: () => {}, zero: () => {} });

/** {@link wireBuffers} as a source of buffers (for readBodyBytes and the package writer). */
export const wireBufferSource = {
  alloc: (size: number): Uint8Array => wireBuffers.take(size),
  free: (buffer: Uint8Array): void => void wireBuffers.give(buffer),
};
