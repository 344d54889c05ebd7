/** When to retry and how long to wait: 429, 503, connection failures and timeouts, with backoff and jitter. */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from '../errors.js';
import { sleep } from './abort.js';

const INITIAL_DELAY_MS = 500;
const MAX_BACKOFF_MS = 8_000;
/** A Retry-After beyond this is not waited out: the error goes to the caller, with `retryAfter`. */
export const MAX_RETRY_AFTER_MS = 60_000;

export function isRetryable(err: unknown): boolean {
  if (err instanceof APIError) return err.status === 429 || err.status === 503;
  // A timeout may mean the router is still working on it; retrying doubles the load. OpenAI's SDK
  // retries timeouts too, and a fresh package is harmless, so we do.
  if (err instanceof APIConnectionTimeoutError) return true;
  return err instanceof APIConnectionError && !certificateRefused(err);
}

/**
 * A TLS certificate the runtime would not trust: the same on every try, so never retried. Node names
 * the reason with OpenSSL's verification codes (X509_V_ERR_… without the prefix) and its own for
 * another host's name. Browsers say only "Failed to fetch", and are retried as any connection failure.
 */
const CERTIFICATE_REFUSED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function certificateRefused(err: Error): boolean {
  // The client's error, fetch's ("fetch failed"), the TLS socket's: a few causes deep at most.
  let cause: unknown = err.cause;
  for (let depth = 0; depth < 4 && cause instanceof Object; depth++, cause = (cause as { cause?: unknown }).cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && CERTIFICATE_REFUSED.has(code)) return true;
  }
  return false;
}

/** Retry-After in seconds (delta-seconds or an HTTP date), when present and sane. */
export function parseRetryAfter(headers: Headers): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms) / 1000;
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, (date - Date.now()) / 1000);
}

/**
 * The delay before retry number `attempt` (1-based): the router's Retry-After when it gave one over
 * 0, and up to a fifth more (the clients a router turned away at once must not all come back at once),
 * else exponential backoff with full jitter in [50%, 100%] of the step. Undefined: do not retry.
 */
export function retryDelayMs(attempt: number, err: unknown, random: () => number = Math.random): number | undefined {
  const headers = err instanceof APIError ? err.headers : undefined;
  const retryAfter = headers ? parseRetryAfter(headers) : undefined;
  // A Retry-After of 0 (or a date gone by) names no time: backoff (openai-node 6 retries at once), so
  // a router cannot call every client back in the same instant, nor at once, again and again.
  if (retryAfter !== undefined && retryAfter > 0) {
    const ms = retryAfter * 1000;
    return ms <= MAX_RETRY_AFTER_MS ? ms * (1 + random() * 0.2) : undefined;
  }
  const step = Math.min(INITIAL_DELAY_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return step * (0.5 + random() * 0.5);
}

/**
 * Runs `attempt`, and again after a delay when it fails with something retryable, at most
 * `maxRetries` more times. An abort during a delay ends it with APIUserAbortError.
 */
export async function withRetries<T>(attempt: () => Promise<T>, maxRetries: number, signal?: AbortSignal): Promise<T> {
  for (let retry = 1; ; retry++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = retry <= maxRetries && isRetryable(err) ? retryDelayMs(retry, err) : undefined;
      if (delay === undefined) throw err;
      await sleep(delay, signal).catch((reason: unknown) => {
        throw new APIUserAbortError('request aborted by the caller', { cause: reason });
      });
    }
  }
}
