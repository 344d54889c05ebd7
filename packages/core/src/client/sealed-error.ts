/**
 * A v2 error response's sealed part: the real reason for an error whose text came from the upstream
 * (which saw the plaintext), readable only with the request's answer key. Its `detail` in the clear
 * is generic; a router that seals nothing, or a client that does not look, gets that.
 */
import { MAX_SEALED_MESSAGE_CHARS, SEALED_ERROR_FIELD } from '../protocol/constants.js';
import type { AesKey } from '../crypto/gcm/types.js';
import { parseSealedError, type SealedError } from '../protocol/sealed-error.js';
import { openErrorV2 } from '../protocol/v2.js';
import { SecurityError, type APIError, type SealedErrorObject } from '../errors.js';
import { sanitizeDetail } from '../transport/detail.js';
import type { Exchange } from '../transport/exchange.js';
import { errorForStatus } from '../transport/status.js';

/**
 * The error the router sealed into `response` for the request sealed for `payloadId`, typed by the
 * status it carries; undefined when there is none. A sealed error that does not open (forged,
 * another request's, damaged) is a SecurityError: never the generic error instead.
 */
export async function sealedError(response: Exchange, answerKey: Promise<AesKey>, payloadId: string): Promise<APIError | undefined> {
  let sealed: unknown;
  try {
    sealed = (JSON.parse(response.text) as Record<string, unknown> | null)?.[SEALED_ERROR_FIELD];
  } catch {
    return undefined; // not JSON: nothing sealed in it
  }
  if (sealed === undefined) return undefined;
  let plaintext: Uint8Array | undefined;
  try {
    plaintext = await openErrorV2(sealed, await answerKey, payloadId);
    const error = parseSealedError(plaintext);
    return sealedAPIError(error, error.status ?? response.status, response.headers, payloadId);
  } catch (cause) {
    throw new SecurityError(`the router's ${response.status} response carries a sealed error that is not authentic for this request`, { cause });
  } finally {
    plaintext?.fill(0);
  }
}

/**
 * The APIError of an error sealed for this request, typed by `status`: its message, type, code and
 * param sanitized as a `detail` is (they came from the model's server), the message up to
 * {@link MAX_SEALED_MESSAGE_CHARS} characters, kept as `err.error`.
 */
export function sealedAPIError(sealed: SealedError, status: number, headers: Headers, payloadId: string): APIError {
  const message = sanitizeDetail(sealed.message, MAX_SEALED_MESSAGE_CHARS);
  const error: SealedErrorObject = {
    message: message ?? '',
    type: sanitizeDetail(sealed.type) ?? '',
    code: typeof sealed.code === 'string' ? (sanitizeDetail(sealed.code) ?? '') : sealed.code,
    param: typeof sealed.param === 'string' ? (sanitizeDetail(sealed.param) ?? '') : null,
  };
  return errorForStatus(status, message, headers, { error, payloadId });
}
