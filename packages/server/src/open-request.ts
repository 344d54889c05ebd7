/**
 * Step two of a secure completion (handler.ts): the request's package opened with the router's key,
 * v2 when the router speaks it and the package says "2.0" (its headers bound in), else v1, and its
 * plaintext read as a chat request. Gives the request and how to seal its answer. Every refusal is an
 * HttpError whose detail is our own text or core's, never engine output or plaintext.
 */
import { MAX_REQUEST_PLAINTEXT_BYTES, PROTOCOL_V2_VERSION, parseJsonPackage, requestOpenerV2, v1Opener, type PackageOpener, type PrivateKeys, type ProtocolVersion } from '@nomyo/core/protocol';
import { openBody, parseJsonBytes, readPackageBody, type BodyText, type OwnedBytes, type PackageBody } from '@nomyo/core/internal';
import { v1Sealer, v2Sealer, type AnswerSealer } from './answer-sealer.js';
import type { RouterBuffers } from './buffers.js';
import { HttpError, UpstreamError } from './http-error.js';
import { clientKey, type RequestHeaders } from './request-headers.js';
import type { ChatRequest } from './types.js';

/** The detail in the clear of a v2 request refused once opened: its reason goes sealed. */
export const REFUSED_CONTENTS = 'the request was refused once opened (4xx): the reason is sealed for its sender';

/** A request body's text is refused unless UTF-8. */
const REQUEST_TEXT: BodyText = { fatal: true, parse: parseJsonPackage };

export interface OpenRequestContext {
  /** The router's key, then those it also accepts (a rotation's). */
  privateKeys: PrivateKeys;
  /** The highest protocol version this router speaks: 2 opens v2 packages too, 1 refuses them. */
  protocol: ProtocolVersion;
  buffers: RouterBuffers;
}

export interface OpenedRequest {
  request: ChatRequest;
  sealer: AnswerSealer;
  /** The version the package was opened as. */
  protocol: ProtocolVersion;
}

/** A v2 request that opened but is no chat request: its refusal, to be sealed for its sender. */
export interface RefusedRequest {
  refusal: UpstreamError;
  sealer: AnswerSealer;
  protocol: 2;
}

/** Opens `body` (taken over: released here, or once its plaintext is read) as the request these headers came with. */
export async function openRequest(body: OwnedBytes, headers: RequestHeaders, ctx: OpenRequestContext): Promise<OpenedRequest | RefusedRequest> {
  let read: PackageBody | undefined;
  let unread: HttpError | undefined;
  try {
    read = readPackageBody(body.bytes, REQUEST_TEXT);
  } catch (err) {
    unread = new HttpError(400, securityMessage(err, 'malformed package: not UTF-8'));
  }
  if (ctx.protocol === 2 && isV2(read?.pkg)) {
    // The binding is rebuilt from the headers as received: a changed payload id or tier does not open.
    // X-Public-Key, if sent, is ignored: the answer is sealed with the request's own key.
    const opened = await open(body, read!, requestOpenerV2(ctx.privateKeys, { payloadId: headers.payloadId, tier: headers.tier }), ctx.buffers);
    let request: ChatRequest;
    try {
      request = chatRequest(opened.plaintext);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      // Its reason tells what the request holds (its shape, its size): for its sender alone, sealed
      // as an upstream's reason is, with a detail in the clear that says no more than the status.
      const sealed = { message: err.detail, type: 'invalid_request_error', code: null, status: err.status };
      return { refusal: new UpstreamError(err.status, REFUSED_CONTENTS, sealed), sealer: v2Sealer(opened.answerKey, opened.kdfKey, headers.payloadId, ctx.buffers, false), protocol: 2 };
    }
    return { request, sealer: v2Sealer(opened.answerKey, opened.kdfKey, headers.payloadId, ctx.buffers, request.stream === true), protocol: 2 };
  }
  // v1 reports a header problem before a package problem, as routers before v2 did.
  let recipient: CryptoKey;
  try {
    recipient = await clientKey(headers.publicKey);
    if (unread) throw unread;
  } catch (err) {
    body.release();
    throw err;
  }
  const opened = await open(body, read!, v1Opener(ctx.privateKeys), ctx.buffers);
  return { request: wholeAnswerOnly(chatRequest(opened.plaintext)), sealer: v1Sealer(recipient, ctx.buffers), protocol: 1 };
}

/** v1 never streams: a v1 request that asks to gets a whole v1 answer, as deployed routers give it. */
function wholeAnswerOnly(request: ChatRequest): ChatRequest {
  const { stream: _stream, stream_options: _options, ...whole } = request;
  return whole as ChatRequest;
}

function isV2(pkg: unknown): boolean {
  return typeof pkg === 'object' && pkg !== null && (pkg as { version?: unknown }).version === PROTOCOL_V2_VERSION;
}

function securityMessage(err: unknown, fallback: string): string {
  return (err as Error | undefined)?.name === 'SecurityError' ? (err as Error).message : fallback;
}

/** The request's plaintext, or the 400 it earns (core's SecurityError text). Takes `body` over. */
async function open<T extends object>(body: OwnedBytes, read: PackageBody, opener: PackageOpener<T>, buffers: RouterBuffers) {
  try {
    return await openBody(body, { text: REQUEST_TEXT, read, opener, plaintexts: buffers.plaintexts, inPlace: buffers.exclusive });
  } catch (err) {
    throw new HttpError(400, securityMessage(err, 'the package could not be opened'));
  }
}

/** The decrypted chat request, its long strings decoded once; the plaintext is released (zeroed) before returning. */
function chatRequest(plaintext: OwnedBytes): ChatRequest {
  let parsed: unknown;
  try {
    if (plaintext.bytes.length > MAX_REQUEST_PLAINTEXT_BYTES) throw new HttpError(413, `the request plaintext exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
    parsed = parseJsonBytes(plaintext.bytes, { fatal: true });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, 'the decrypted request is not UTF-8 JSON');
  } finally {
    plaintext.release();
  }
  return checkChatRequest(parsed);
}

function checkChatRequest(value: unknown): ChatRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the decrypted request is not a JSON object');
  const request = value as Record<string, unknown>;
  if (typeof request.model !== 'string' || request.model === '') throw new HttpError(400, 'the request needs a model string');
  if (!Array.isArray(request.messages) || request.messages.length === 0) throw new HttpError(400, 'the request needs a non-empty messages array');
  if (request.stream !== undefined && typeof request.stream !== 'boolean') throw new HttpError(400, 'stream must be a boolean');
  if (request.tools !== undefined && !Array.isArray(request.tools)) throw new HttpError(400, 'tools must be an array');
  return request as ChatRequest;
}
