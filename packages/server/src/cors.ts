/**
 * CORS for browser callers: every response carries these headers, so a page on any origin can call
 * the router. No credentials mode, so `*` is allowed even with an Authorization header.
 */
import { HEADERS } from '@nomyo/core/protocol';
import { PROCESSING_TIME_HEADER } from './constants.js';

const ALLOW_HEADERS = [HEADERS.contentType, HEADERS.payloadId, HEADERS.publicKey, HEADERS.securityTier, HEADERS.authorization].join(', ');

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  // X-Nomyo-Protocol: a page on another origin must read it to use protocol v2. X-Request-ID: a
  // proxy's (nginx's $request_id), which a client error's `requestId` reads.
  'Access-Control-Expose-Headers': [PROCESSING_TIME_HEADER, 'Retry-After', HEADERS.protocol, 'X-Request-ID'].join(', '),
};

export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Allow-Headers': ALLOW_HEADERS,
  'Access-Control-Max-Age': '600',
};
