/**
 * Step one of a secure completion (handler.ts): the headers, checked before anything is opened.
 * Every refusal is an HttpError whose detail is our own text.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  HEADERS,
  PAYLOAD_ID_RULE,
  SECURITY_TIER_RULE,
  importRsaPublicKey,
  isPayloadId,
  isSecurityTier,
  pemToDer,
  type SecurityTier,
} from '@nomyo/core/protocol';
import { HttpError } from './http-error.js';

/** What the headers of a secure completion say, checked. */
export interface RequestHeaders {
  payloadId: string;
  tier: SecurityTier | undefined;
  /** `X-Public-Key`, still percent-encoded: read only for a v1 request (see {@link clientKey}). */
  publicKey: string | undefined;
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Refuses (401) a request without `Authorization: Bearer <apiKey>`, when the router has an API key. */
export function authorize(headers: IncomingHttpHeaders, apiKey: string | undefined): void {
  if (apiKey === undefined) return;
  const challenge = { 'WWW-Authenticate': 'Bearer' };
  const match = /^Bearer +(.+)$/i.exec(header(headers, HEADERS.authorization) ?? '');
  if (!match?.[1]) throw new HttpError(401, 'missing API key', challenge);
  // Equal-length digests, so the comparison time says nothing about the key.
  if (!timingSafeEqual(sha256(match[1]), sha256(apiKey))) throw new HttpError(401, 'invalid API key', challenge);
}

/** The payload id and tier (400 when malformed), and the v1 client key as sent. */
export function readRequestHeaders(headers: IncomingHttpHeaders): RequestHeaders {
  const payloadId = header(headers, HEADERS.payloadId);
  if (payloadId === undefined || payloadId === '') throw new HttpError(400, `missing ${HEADERS.payloadId} header`);
  if (!isPayloadId(payloadId)) throw new HttpError(400, `${HEADERS.payloadId} must be ${PAYLOAD_ID_RULE}`);
  const tier = header(headers, HEADERS.securityTier);
  if (tier !== undefined && !isSecurityTier(tier)) throw new HttpError(400, `${HEADERS.securityTier} must be ${SECURITY_TIER_RULE}`);
  return { payloadId, tier, publicKey: header(headers, HEADERS.publicKey) };
}

/** The v1 caller's key: percent-decoded (the Python client leaves `/` raw, encodeURIComponent escapes it), SPKI, RSA-OAEP, >= 2048 bits. */
export async function clientKey(raw: string | undefined): Promise<CryptoKey> {
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
