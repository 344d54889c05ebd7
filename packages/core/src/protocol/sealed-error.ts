/**
 * The plaintext of an error the router tells only the client (a v2 error response's `sealed_error`,
 * and later a stream's final record): `{"error": {"message", "type", "code", "status"?}}`, where
 * `status` is the HTTP status the router would have answered with had it been free to say why. The
 * text comes from the network: the client shows it sanitized, as it shows any `detail`.
 */
import { SecurityError } from '../errors.js';
import { MAX_ANSWER_DEPTH } from './constants.js';
import { jsonNestingExceeds } from './json-depth.js';
import { isObject } from './package.js';

/** An error sealed for the client alone (docs/protocol.md, "Sealed error responses"). */
export interface SealedError {
  /** What went wrong, from the upstream; shown sanitized, at most 100 characters. */
  message: string;
  /** The upstream's error type, or `upstream_error`. */
  type: string;
  /** The upstream's error code, if it gave one. */
  code: string | number | null;
  /** The request parameter the upstream's error is about (`messages`, `tools`), when it named one. */
  param?: string | null;
  /** The HTTP status behind the error (400-599), when there is one. */
  status?: number;
}

const encoder = new TextEncoder();

/** The UTF-8 JSON of `error`, to be sealed. The caller zeroes it once sealed. */
export function sealedErrorBytes(error: SealedError): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify({ error }));
}

/** The error in an opened plaintext; anything else is a SecurityError (the sealer is the router that opened the request). */
export function parseSealedError(plaintext: Uint8Array): SealedError {
  let value: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
    // Behind the depth cap of every answer and record (a caller's JSON.stringify of it recurses).
    if (jsonNestingExceeds(text, MAX_ANSWER_DEPTH)) throw notAnError();
    value = JSON.parse(text);
  } catch {
    throw notAnError();
  }
  const error = isObject(value) ? value.error : undefined;
  if (!isObject(error)) throw notAnError();
  const { message, type, code, param, status } = error;
  // The spec's fields, as it has them: anything else is no error of the protocol's.
  if (typeof message !== 'string' || typeof type !== 'string') throw notAnError();
  if (code !== null && typeof code !== 'string' && !(typeof code === 'number' && Number.isFinite(code))) throw notAnError();
  // This project's additions, from another router of other shape: left out, the error still told.
  const knownParam = typeof param === 'string' || param === null ? { param } : {};
  const knownStatus = Number.isInteger(status) && (status as number) >= 400 && (status as number) <= 599 ? { status: status as number } : {};
  return { message, type, code, ...knownParam, ...knownStatus };
}

function notAnError(): SecurityError {
  return new SecurityError('the sealed error is not {"error": {message, type, code}}');
}
