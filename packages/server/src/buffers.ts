/**
 * The router's buffers for large bodies. Bodies come from core's shared wire buffers, reused by the
 * next request, unless something may keep a body after its request (the request log, a test hook):
 * then each body gets a buffer of its own. Plaintexts (a request opened, an answer before sealing)
 * go into the body's buffer when it is the request's alone (see `inPlace`), else into a pool of
 * buffers zeroed whenever they come back.
 */
import { SecureBufferPool, wireBuffers, type PlaintextBuffers } from '@nomyo/core/protocol';
import type { BodyBuffers } from './body.js';

export interface RouterBuffers {
  plaintext: PlaintextBuffers;
  /** Answer bodies. */
  wire: PlaintextBuffers;
  /** Request bodies. */
  body: BodyBuffers;
  /**
   * True when bodies are this request's alone (no log or hook keeps them): a request is then opened
   * into its own body's buffer and its answer sealed where its JSON was written, so a request takes
   * one large buffer, not two (handler.ts). Plaintext in a body buffer is zeroed before it goes back.
   */
  inPlace: boolean;
}

export function routerBuffers(reuseBodies: boolean): RouterBuffers {
  const plaintexts = new SecureBufferPool({ allocate: (size) => new Uint8Array(size), release: () => {}, zero: (view) => view.fill(0) });
  const plaintext: PlaintextBuffers = {
    alloc: (size) => plaintexts.take(size),
    // Web Crypto's own plaintexts (the plain way) are not from the pool: zeroed all the same.
    free: (buffer) => void (plaintexts.give(buffer) || buffer.fill(0)),
  };
  if (!reuseBodies) {
    return { plaintext, wire: { alloc: (size) => new Uint8Array(size), free: () => {} }, body: { take: (size) => new Uint8Array(size), give: () => {} }, inPlace: false };
  }
  return {
    plaintext,
    wire: { alloc: (size) => wireBuffers.take(size), free: (buffer) => void wireBuffers.give(buffer) },
    body: { take: (size) => wireBuffers.take(size), give: (buffer) => void wireBuffers.give(buffer) },
    inPlace: true,
  };
}
