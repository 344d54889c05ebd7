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
  SECURITY_TIERS,
  checkPackage,
  importRsaPublicKey,
  openPackage,
  openRequestV2,
  parseJsonPackage,
  pemToDer,
  sealAnswerV2,
  sealPackage,
  serializePackage,
  type AnswerPackage,
  type EncryptedPackage,
  type ProtocolVersion,
  type SecurityTier,
} from '@nomyo/core/protocol';
import { HttpError } from './http-error.js';
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
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

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

/** The body's JSON, or the 400 it earns (thrown later, so v1 keeps reporting header problems first). */
function readPackage(body: Uint8Array): { pkg: unknown; error?: undefined } | { pkg?: undefined; error: HttpError } {
  try {
    return { pkg: parseJsonPackage(strictUtf8.decode(body)) };
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

/** The decrypted chat request; the plaintext bytes are zeroed before returning. */
function chatRequest(plaintext: Uint8Array): ChatRequest {
  let parsed: unknown;
  try {
    if (plaintext.length > MAX_REQUEST_PLAINTEXT_BYTES) throw new HttpError(413, `the request plaintext exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
    parsed = JSON.parse(strictUtf8.decode(plaintext));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, 'the decrypted request is not UTF-8 JSON');
  } finally {
    plaintext.fill(0);
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
  const { pkg, error } = readPackage(ctx.body);
  let request: ChatRequest;
  let seal: (plaintext: Uint8Array<ArrayBuffer>, extra: { processed_at: number }) => Promise<EncryptedPackage | AnswerPackage>;
  if (ctx.protocol === 2 && isV2(pkg)) {
    // The binding is rebuilt from the headers as received: a changed payload id or tier does not open.
    // X-Public-Key, if sent, is ignored: the answer is sealed with the request's own key.
    const { plaintext, answerKey } = await opened(() => openRequestV2(pkg, ctx.privateKey, { payloadId: id, tier }));
    request = chatRequest(plaintext);
    seal = (bytes, extra) => sealAnswerV2(bytes, answerKey, id, extra);
  } else {
    const recipient = await clientKey(ctx.headers);
    if (error) throw error;
    request = chatRequest(await opened(() => openPackage(checkPackage(pkg), ctx.privateKey)));
    seal = (bytes, extra) => sealPackage(bytes, recipient, extra);
  }

  const answer = await ctx.model(request, { payloadId: id, securityTier: tier, signal: ctx.signal });
  const json = JSON.stringify(answer);
  if (json === undefined) throw new Error('the model produced no answer');
  const plaintext = new TextEncoder().encode(json);
  let sealed: EncryptedPackage | AnswerPackage;
  try {
    sealed = await seal(plaintext, { processed_at: Math.floor(Date.now() / 1000) });
  } finally {
    plaintext.fill(0);
  }
  if (!ctx.tamper) return textAnswer(200, serializePackage(sealed), 'application/json');
  const tampered: unknown = await ctx.tamper(sealed);
  return typeof tampered === 'string' ? textAnswer(200, tampered, 'application/json') : jsonAnswer(200, tampered);
}
