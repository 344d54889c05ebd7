/**
 * POST /v1/chat/secure_completion: check the headers, open the package with the server key, let
 * the model answer, seal the answer: v1 to the caller's key (X-Public-Key); v2 (when this router
 * speaks it and the package says "2.0") with the key derived from the request's own, after opening
 * the request with its headers bound in. Every refusal is an HttpError whose detail is our own text,
 * never engine output or plaintext.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  HEADERS,
  MAX_REQUEST_PLAINTEXT_BYTES,
  PAYLOAD_ID_PATTERN,
  PROTOCOL_V2_VERSION,
  SEALED_ERROR_FIELD,
  SECURITY_TIERS,
  answerSealingV2,
  errorSealingV2,
  importRsaPublicKey,
  openPackageBody,
  openPackageBodyInPlace,
  parseJsonBytes,
  parseJsonPackage,
  pemToDer,
  readPackageBody,
  requestOpenerV2,
  sealWith,
  sealedErrorBytes,
  stringifyJsonBytes,
  v1Opener,
  v1Sealing,
  writeSealedPackage,
  writeSealedPackageInPlace,
  inPlaceRoom,
  type AnswerPackage,
  type BodyText,
  type EncryptedPackage,
  type PackageBody,
  type PackageOpener,
  type PlaintextBuffers,
  type ProtocolVersion,
  type Sealing,
  type SecurityTier,
} from '@nomyo/core/protocol';
import { HttpError, UpstreamError } from './http-error.js';
import { jsonAnswer, textAnswer, type Answer } from './respond.js';
import type { ChatRequest, CompletionModel } from './types.js';

export interface SecureCompletionContext {
  headers: IncomingHttpHeaders;
  body: Uint8Array;
  privateKey: CryptoKey;
  apiKey: string | undefined;
  model: CompletionModel;
  signal: AbortSignal;
  /** The highest protocol version this router speaks: 2 opens v2 packages too, 1 refuses them. */
  protocol: ProtocolVersion;
  tamper: ((pkg: EncryptedPackage | AnswerPackage) => unknown) | undefined;
  /** Buffers for plaintexts (zeroed when given back) and for the answer body (ciphertext), and whether the body buffers are the request's alone (buffers.ts). */
  buffers: { plaintext: PlaintextBuffers; wire: PlaintextBuffers; inPlace: boolean };
  /** Gives the request body's buffer back once it is opened (its answer can then take it). */
  releaseBody: () => void;
}

/** A request body's text is refused unless UTF-8. */
const REQUEST_TEXT: BodyText = { fatal: true, parse: parseJsonPackage };

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function checkApiKey(authorization: string | undefined, apiKey: string | undefined): void {
  if (apiKey === undefined) return;
  const challenge = { 'WWW-Authenticate': 'Bearer' };
  const match = /^Bearer +(.+)$/i.exec(authorization ?? '');
  if (!match?.[1]) throw new HttpError(401, 'missing API key', challenge);
  // Equal-length digests, so the comparison time says nothing about the key.
  if (!timingSafeEqual(sha256(match[1]), sha256(apiKey))) throw new HttpError(401, 'invalid API key', challenge);
}

function payloadId(headers: IncomingHttpHeaders): string {
  const id = header(headers, HEADERS.payloadId);
  if (id === undefined || id === '') throw new HttpError(400, `missing ${HEADERS.payloadId} header`);
  if (!PAYLOAD_ID_PATTERN.test(id)) throw new HttpError(400, `${HEADERS.payloadId} must be 1 to 128 printable ASCII characters`);
  return id;
}

/** The caller's key: percent-decoded (the Python client leaves `/` raw, encodeURIComponent escapes it), SPKI, RSA-OAEP, >= 2048 bits. */
async function clientKey(headers: IncomingHttpHeaders): Promise<CryptoKey> {
  const raw = header(headers, HEADERS.publicKey);
  if (raw === undefined || raw === '') throw new HttpError(400, `missing ${HEADERS.publicKey} header`);
  let pem: string;
  try {
    pem = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `${HEADERS.publicKey} is not valid percent-encoding`);
  }
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) throw new HttpError(400, `${HEADERS.publicKey} is not an SPKI PEM public key`);
  try {
    return await importRsaPublicKey(pemToDer(pem, 'PUBLIC KEY'));
  } catch {
    throw new HttpError(400, `${HEADERS.publicKey} must be an RSA public key of at least 2048 bits`);
  }
}

function securityTier(headers: IncomingHttpHeaders): SecurityTier | undefined {
  const tier = header(headers, HEADERS.securityTier);
  if (tier === undefined) return undefined;
  if (!(SECURITY_TIERS as readonly string[]).includes(tier)) throw new HttpError(400, `${HEADERS.securityTier} must be one of: ${SECURITY_TIERS.join(', ')}`);
  return tier as SecurityTier;
}

function securityMessage(err: unknown, fallback: string): string {
  return (err as Error | undefined)?.name === 'SecurityError' ? (err as Error).message : fallback;
}

/** The body's JSON (ciphertext left in the bytes), or the 400 it earns (thrown later, so v1 keeps reporting header problems first). */
function readPackage(body: Uint8Array): { read: PackageBody; error?: undefined } | { read?: undefined; error: HttpError } {
  try {
    return { read: readPackageBody(body, REQUEST_TEXT) };
  } catch (err) {
    return { error: new HttpError(400, securityMessage(err, 'malformed package: not UTF-8')) };
  }
}

/** Runs `open` (package checks and decryption); any failure is a 400 with core's SecurityError text. */
async function opened<T>(open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw new HttpError(400, securityMessage(err, 'the package could not be opened'));
  }
}

/** A request's plaintext, and how to be done with it: zeroed, its buffer given back; and what its opener handed back. */
type OpenedRequest<T extends object> = { plaintext: Uint8Array; done(): void } & T;

/** The request's plaintext, or the 400 it earns; the body's buffer goes back once the plaintext is done with. */
async function openBody<T extends object>(ctx: SecureCompletionContext, read: PackageBody, opener: PackageOpener<T>): Promise<OpenedRequest<T>> {
  try {
    if (ctx.buffers.inPlace) {
      const inPlace = await opened(() => openPackageBodyInPlace(ctx.body, read, opener));
      // In the body's own buffer: that goes back only after the plaintext in it is zeroed.
      if (inPlace) return { ...inPlace, done: () => (inPlace.plaintext.fill(0), ctx.releaseBody()) };
    }
    const body = await opened(() => openPackageBody(ctx.body, read, opener, ctx.buffers.plaintext));
    ctx.releaseBody();
    return { ...body, done: () => ctx.buffers.plaintext.free(body.plaintext) };
  } catch (err) {
    ctx.releaseBody();
    throw err;
  }
}

/** The decrypted chat request, its long strings decoded once; the plaintext is done with before returning. */
function chatRequest({ plaintext, done }: OpenedRequest<object>): ChatRequest {
  let parsed: unknown;
  try {
    if (plaintext.length > MAX_REQUEST_PLAINTEXT_BYTES) throw new HttpError(413, `the request plaintext exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
    parsed = parseJsonBytes(plaintext, { fatal: true });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, 'the decrypted request is not UTF-8 JSON');
  } finally {
    done();
  }
  return checkChatRequest(parsed);
}

function checkChatRequest(value: unknown): ChatRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the decrypted request is not a JSON object');
  const request = value as Record<string, unknown>;
  if (typeof request.model !== 'string' || request.model === '') throw new HttpError(400, 'the request needs a model string');
  if (!Array.isArray(request.messages) || request.messages.length === 0) throw new HttpError(400, 'the request needs a non-empty messages array');
  if (request.stream === true) throw new HttpError(400, 'streaming is not supported by the secure completion protocol');
  if (request.tools !== undefined && !Array.isArray(request.tools)) throw new HttpError(400, 'tools must be an array');
  return request as ChatRequest;
}

function isV2(pkg: unknown): boolean {
  return typeof pkg === 'object' && pkg !== null && (pkg as { version?: unknown }).version === PROTOCOL_V2_VERSION;
}

export async function handleSecureCompletion(ctx: SecureCompletionContext): Promise<Answer> {
  checkApiKey(header(ctx.headers, HEADERS.authorization), ctx.apiKey);
  const id = payloadId(ctx.headers);
  const tier = securityTier(ctx.headers);
  const { read, error } = readPackage(ctx.body);
  const { plaintext: buffers } = ctx.buffers;
  let request: ChatRequest;
  let sealing: (extra: { processed_at: number }) => Promise<Sealing>;
  // v2: an error whose text came from the upstream is sealed for this client alone; v1 cannot be (its
  // key travels in the clear), so it gets the generic detail only.
  let sealError: ((err: UpstreamError) => Promise<Answer>) | undefined;
  if (ctx.protocol === 2 && isV2(read?.pkg)) {
    // The binding is rebuilt from the headers as received: a changed payload id or tier does not open.
    // X-Public-Key, if sent, is ignored: the answer is sealed with the request's own key.
    const v2 = await openBody(ctx, read!, requestOpenerV2(ctx.privateKey, { payloadId: id, tier }));
    const { answerKey } = v2;
    request = chatRequest(v2);
    sealing = async (extra) => answerSealingV2(answerKey, id, extra);
    sealError = (err) => sealedErrorAnswer(err, answerKey, id);
  } else {
    const recipient = await clientKey(ctx.headers);
    if (error) throw error;
    request = chatRequest(await openBody(ctx, read!, v1Opener(ctx.privateKey)));
    sealing = (extra) => v1Sealing(recipient, extra);
  }

  let answer: unknown;
  try {
    answer = await ctx.model(request, { payloadId: id, securityTier: tier, signal: ctx.signal });
  } catch (err) {
    if (err instanceof UpstreamError && sealError) return sealError(err);
    throw err;
  }
  const ready = await sealing({ processed_at: Math.floor(Date.now() / 1000) });
  if (ctx.tamper) {
    const json = answerJson(answer, buffers);
    let sealed: EncryptedPackage | AnswerPackage;
    try {
      sealed = await sealWith(ready, json.buffer.subarray(0, json.length) as Uint8Array<ArrayBuffer>);
    } finally {
      buffers.free(json.buffer);
    }
    const tampered: unknown = await ctx.tamper(sealed);
    return typeof tampered === 'string' ? textAnswer(200, tampered, 'application/json') : jsonAnswer(200, tampered);
  }
  const wire = ctx.buffers.wire;
  const body = ctx.buffers.inPlace ? await sealAnswerInPlace(answer, ready, wire) : await sealAnswer(answer, ready, buffers, wire);
  return { status: 200, headers: { 'Content-Type': 'application/json' }, body: body.buffer.subarray(0, body.length), release: () => wire.free(body.buffer) };
}

/**
 * A v2 error answer: the status and generic detail of `err` in the clear, its real reason sealed with
 * the request's answer key (`{"detail": …, "sealed_error": <v2 answer package>}`, see core's
 * SEALED_ERROR_FIELD). Clients that do not open it read the generic detail.
 */
async function sealedErrorAnswer(err: UpstreamError, answerKey: CryptoKey, payloadId: string): Promise<Answer> {
  const plaintext = sealedErrorBytes(err.sealed);
  try {
    const sealed = await sealWith(errorSealingV2(answerKey, payloadId), plaintext);
    return jsonAnswer(err.status, { detail: err.detail, [SEALED_ERROR_FIELD]: sealed }, { ...err.headers });
  } finally {
    plaintext.fill(0);
  }
}

/**
 * The answer's JSON: its long strings go straight into a buffer from `buffers` (one copy of each,
 * whatever the size). `buffers` zeroes what comes back.
 */
function answerJson(answer: unknown, buffers: PlaintextBuffers): { buffer: Uint8Array; length: number } {
  const json = stringifyJsonBytes(answer, {
    alloc: (size) => buffers.alloc(size),
    release: (bytes) => buffers.free(bytes),
    maxBytes: Number.MAX_SAFE_INTEGER,
    tooLarge: () => new Error('the answer is too large'),
  });
  if (json === undefined) throw new Error('the model produced no answer');
  return json;
}

/** The answer's JSON in a plaintext buffer, sealed into a body buffer from `wire` (the ciphertext's base64 straight into it). */
async function sealAnswer(answer: unknown, ready: Sealing, buffers: PlaintextBuffers, wire: PlaintextBuffers): Promise<{ buffer: Uint8Array; length: number }> {
  const json = answerJson(answer, buffers);
  try {
    return await writeSealedPackage(ready, json.buffer.subarray(0, json.length), (size) => wire.alloc(size));
  } finally {
    buffers.free(json.buffer);
  }
}

/**
 * The answer's JSON written into the buffer its body goes into, a third of its size past the start,
 * and sealed there (core's inPlaceRoom): one buffer, where sealAnswer takes two. The wire buffers do
 * not zero what comes back: writeSealedPackageInPlace zeroes what is left of the plaintext, this
 * what it did not seal.
 */
async function sealAnswerInPlace(answer: unknown, ready: Sealing, wire: PlaintextBuffers): Promise<{ buffer: Uint8Array; length: number }> {
  const behind = new Map<Uint8Array, { buffer: Uint8Array; start: number }>();
  const json = answerJson(answer, {
    alloc: (size) => {
      const { bytes, start } = inPlaceRoom(size);
      const buffer = wire.alloc(bytes);
      const view = buffer.subarray(start, start + size);
      behind.set(view, { buffer, start });
      return view;
    },
    free: (view) => {
      view.fill(0);
      const place = behind.get(view);
      behind.delete(view);
      if (place) wire.free(place.buffer);
    },
  });
  const { buffer, start } = behind.get(json.buffer)!;
  const plaintextEnd = start + json.length;
  let length: number | undefined;
  try {
    length = await writeSealedPackageInPlace(ready, buffer, start, json.length);
    // No room around it for this package (a router key above RSA-16384): sealed into a buffer of its own.
    if (length === undefined) return await writeSealedPackage(ready, buffer.subarray(start, plaintextEnd), (size) => wire.alloc(size));
  } finally {
    // Sealed here, nothing of the plaintext is left past the body; otherwise it goes, zeroed, with its buffer.
    if (length === undefined) {
      buffer.fill(0, start, plaintextEnd);
      wire.free(buffer);
    }
  }
  return { buffer, length };
}
