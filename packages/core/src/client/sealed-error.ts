/**
 * A v2 error answer's sealed part: the real reason for an error whose text came from the upstream
 * (which saw the plaintext), readable only with the request's answer key. Its `detail` in the clear
 * is generic; a router that seals nothing, or a client that does not look, gets that.
 */
import { SEALED_ERROR_FIELD } from '../protocol/constants.js';
import { parseSealedError } from '../protocol/sealed-error.js';
import { openErrorV2 } from '../protocol/v2.js';
import { SecurityError, type APIError } from '../errors.js';
import { sanitizeDetail } from '../transport/detail.js';
import type { Exchange } from '../transport/http.js';
import { errorForStatus } from '../transport/status.js';

/**
 * The error the router sealed into `answer` for the request sealed for `payloadId`, typed by the
 * status it carries; undefined when there is none. A sealed error that does not open (forged,
 * another request's, damaged) is a SecurityError: never the generic error instead.
 */
export async function sealedError(answer: Exchange, answerKey: Promise<CryptoKey>, payloadId: string): Promise<APIError | undefined> {
  let sealed: unknown;
  try {
    sealed = (JSON.parse(answer.body) as Record<string, unknown> | null)?.[SEALED_ERROR_FIELD];
  } catch {
    return undefined; // not JSON: nothing sealed in it
  }
  if (sealed === undefined) return undefined;
  let plaintext: Uint8Array | undefined;
  try {
    plaintext = await openErrorV2(sealed, await answerKey, payloadId);
    const error = parseSealedError(plaintext);
    return errorForStatus(error.status ?? answer.status, sanitizeDetail(error.message), answer.headers);
  } catch (cause) {
    throw new SecurityError(`the router's ${answer.status} answer carries a sealed error that is not authentic for this request`, { cause });
  } finally {
    plaintext?.fill(0);
  }
}
