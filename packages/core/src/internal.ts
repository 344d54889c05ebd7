/**
 * `@nomyo/core/internal`: what the reference router (`@nomyo/server`) shares with the client besides
 * the protocol: bodies sealed and opened as bytes, in place where they can be, the buffers they use,
 * JSON as bytes, and abort plumbing. NOT PUBLIC API: it changes with the router, without notice and
 * in any release. Implementers of other clients and routers use `@nomyo/core/protocol`.
 * @internal
 * @packageDocumentation
 */
// Web Crypto's type names for projects without lib "DOM" (a side effect of types only).
import './web-crypto-types.js';
export { sealBody } from './protocol/body/seal.js';
export { openBody, type BodyOpening, type OpenedBody } from './protocol/body/open.js';
export { readPackageBody, type BodyText, type PackageBody } from './protocol/body/read.js';
export { inPlaceRoom, sealablePlaintexts } from './protocol/body/layout.js';
export { parseJsonBytes } from './protocol/json-parse.js';
export { stringifyJsonBytes, jsonBytes } from './protocol/json-stringify.js';
export { BufferPool, type Allocator } from './memory/buffer-pool.js';
export { wireBuffers } from './memory/wire-buffers.js';
export { owned, head, heapBytes, type ByteSource, type OwnedBytes, type Placement } from './memory/owned-bytes.js';
export { linkedController, sleep } from './transport/abort.js';
export { forgetLastMatch } from './memory/last-match.js';
export { LARGE_BODY_BYTES, LONG_STRING_BYTES } from './sizes.js';
export { MAX_TIMER_MS } from './env.js';
export { inspectPkcs8 } from './keys/key-material.js';
export { chunksOf } from './client/completion-chunks.js';
export { inFlagTerms } from './cli/arguments.js';
