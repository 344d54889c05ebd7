/**
 * The router's buffers. Bodies come from core's shared wire buffers, reused by the next request,
 * unless something may keep a body after its request (the request log, a test hook): then each body
 * gets a buffer of its own. Plaintexts (a request opened, a completion before it is sealed) go into the
 * body's buffer when it is the request's alone (`exclusive`: see handler.ts), else into a pool of
 * buffers zeroed whenever they come back.
 */
import { BufferPool, owned, sealablePlaintexts, wireBuffers, type ByteSource } from '@nomyo/core/internal';

export interface RouterBuffers {
  /** Plaintexts that do not go where a body is: zeroed when released. */
  plaintexts: ByteSource;
  /** Request bodies as they are read, and answer bodies as they are written (ciphertext). */
  bodies: ByteSource;
  /** A completion's JSON before it is sealed as the answer: a large one placed in a body buffer, to be sealed where it is. */
  completions: ByteSource;
  /**
   * True when bodies are the request's alone (no log or hook keeps them): a request is then opened
   * into its own body's buffer and its answer sealed where its JSON was written, so a request takes
   * one large buffer, not two. Plaintext in a body buffer is zeroed before the buffer goes back.
   */
  exclusive: boolean;
}

export function routerBuffers(exclusive: boolean): RouterBuffers {
  const plaintexts = new BufferPool({ allocate: (size) => new Uint8Array(size), release: () => {}, zero: (view) => view.fill(0) }, true);
  if (!exclusive) {
    // Each body its own buffer, kept by whoever keeps it: never reused, never zeroed (ciphertext).
    const own: ByteSource = { secure: false, take: (size) => owned(new Uint8Array(size), false, () => {}) };
    return { plaintexts, bodies: own, completions: plaintexts, exclusive };
  }
  return { plaintexts, bodies: wireBuffers, completions: sealablePlaintexts(plaintexts, wireBuffers), exclusive };
}
