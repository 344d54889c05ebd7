/**
 * One request on the wire: its plaintext sealed into a body (protocol/body/seal.ts), posted, and the
 * answer's body opened (protocol/body/open.ts), or, for a stream, handed on unread; or its error
 * raised. No JSON text of either body and no base64 string of either ciphertext is made; large
 * bodies are sealed and opened in place.
 */
import { PACKAGE_CONTENT_TYPE, HEADERS, PATHS, STREAM_ACCEPT } from '../protocol/constants.js';
import { parseJsonPackage } from '../protocol/package.js';
import { openBody, type OpenedBody } from '../protocol/body/open.js';
import type { BodyText } from '../protocol/body/read.js';
import { sealBody } from '../protocol/body/seal.js';
import type { SecureByteContext } from '../memory/context.js';
import type { ByteSource, OwnedBytes } from '../memory/owned-bytes.js';
import { wireBuffers } from '../memory/wire-buffers.js';
import { LARGE_BODY_BYTES } from '../sizes.js';
import { exchangeBytes, type ExchangeOptions, type FetchFn } from '../transport/exchange.js';
import type { ResponseStream } from '../transport/response-stream.js';
import { errorFromStatus } from '../transport/status.js';
import type { Protection } from './protection.js';

/** An answer body read as fetch's Response.text() reads it: bad UTF-8 becomes U+FFFD (the checks refuse it later). */
const ANSWER_TEXT: BodyText = { fatal: false, parse: parseJsonPackage };

export interface Wire {
  fetch: FetchFn;
  routerUrl: string;
  /** No fetch option: the runtime's own fetch (see transport/send-body.ts). */
  ownFetch: boolean;
}

/** How one request went: a whole answer opened, or a streamed answer to read (requests that asked for one). */
export type RoundTrip = { opened: OpenedBody<object>; stream?: undefined } | { stream: ResponseStream; opened?: undefined };

/**
 * Seals `plaintext` (taken over) as `protection` says, posts it, and opens a 200 answer, or hands
 * over a streamed one when `streams`; anything else is the APIError the router sealed for this
 * request (v2), or the one its status and detail say.
 */
export async function roundTrip(
  wire: Wire,
  protection: Protection,
  plaintext: OwnedBytes,
  headers: Record<string, string>,
  options: ExchangeOptions & { streams?: boolean },
  secure: SecureByteContext,
): Promise<RoundTrip> {
  const body = await sealBody(protection.sealing, plaintext, wireBuffers);
  const accept: Record<string, string> = options.streams ? { Accept: STREAM_ACCEPT } : {};
  const init = { method: 'POST', headers: { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, ...accept, ...headers, ...protection.headers } };
  const response = await exchangeBytes(wire.fetch, wire.routerUrl + PATHS.secureCompletion, init, body, {
    ...options,
    ownFetch: wire.ownFetch,
    into: answerBodies(secure),
  });
  if (response.stream) return { stream: response.stream };
  if (response.status !== 200 || !response.body) throw (await protection.sealedError?.(response)) ?? errorFromStatus(response.status, response.text, response.headers, { payloadId: headers[HEADERS.payloadId] });
  // A large answer is in secure memory: opened where it is, its plaintext needs no buffer of its own.
  return { opened: await openBody(response.body, { text: ANSWER_TEXT, opener: protection.opener, plaintexts: secure, inPlace: response.body.secure }) };
}

/** Where an answer body is read into: a large one into secure memory, to be opened where it is; a small one (ciphertext only) into the wire buffers. */
function answerBodies(secure: SecureByteContext): ByteSource {
  return { secure: false, take: (size) => (size < LARGE_BODY_BYTES ? wireBuffers : secure).take(size) };
}
