/**
 * Buffers for package bodies on the wire: a request body as it is written, an answer body as it is
 * read. They only ever hold ciphertext (base64 and labels), so they are not zeroed and not locked;
 * reusing them means large requests in a row touch no new pages for their bodies. Plaintext never
 * goes in here (it has secure memory), so a body buffer handed to fetch and reused later can never
 * put a secret on the wire. Shared by every client of the process; bounded like the secure pool.
 * (The reference router also writes plaintext into them, in place: it zeroes that itself.)
 */
import { BufferPool } from './buffer-pool.js';

/**
 * Not locked, so slack that is never written costs no memory: 1/8, so that a router's answer, sealed
 * in place a third past its JSON head (protocol/body/layout.ts inPlaceRoom), fits in its request's buffer.
 */
const WIRE_SLACK = 1 / 8;

export const wireBuffers = new BufferPool({ allocate: (size) => new Uint8Array(size), release: () => {}, zero: () => {} }, false, WIRE_SLACK);
