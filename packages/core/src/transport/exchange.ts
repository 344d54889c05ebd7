/**
 * One HTTP exchange with a deadline: the timeout covers the whole response, body included, and is
 * linked to the caller's signal. Redirects are refused, bodies are read up to a cap, and network
 * failures become typed errors.
 */
import { MAX_ANSWER_BODY_BYTES, MAX_ERROR_BODY_BYTES } from '../protocol/constants.js';
import { APIConnectionError, APIConnectionTimeoutError, NomyoError, SecurityError } from '../errors.js';
import type { ByteSource, OwnedBytes } from '../memory/owned-bytes.js';
import { aborted } from './abort.js';
import { sanitizeDetail } from './detail.js';
import { readBodyBytes, readText } from './read-body.js';
import { sendInit } from './send-body.js';

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** A response with its body read: as text here (an error's, or a key), as bytes in {@link BytesExchange}. */
export interface Exchange {
  status: number;
  headers: Headers;
  /** The body as text; empty when it was read as bytes. */
  text: string;
}

/** A 200 response's body as bytes in one buffer, which the caller releases (the rest as {@link Exchange}). */
export interface BytesExchange extends Exchange {
  body?: OwnedBytes;
}

export interface ExchangeOptions {
  timeout: number;
  signal?: AbortSignal | undefined;
  /** `fetchFn` calls the runtime's own global fetch as it is (no fetch option was given). */
  ownFetch?: boolean;
}

/** Runs `fetch` and reads the body as text, all under one deadline. */
export async function exchange(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions): Promise<Exchange> {
  return run(fetchFn, url, init, opts, async (response, ok) => ({
    status: response.status,
    headers: response.headers,
    text: await readText(response, ok ? MAX_ANSWER_BODY_BYTES : MAX_ERROR_BODY_BYTES, !ok),
  }));
}

/**
 * {@link exchange} for a package: takes `body` over, and releases it once fetch has answered (fetch
 * reads nothing more from its buffer by then: send-body.ts). A 200 response's body is read as bytes
 * into a buffer from `into`, an error's as text.
 */
export async function exchangeBytes(fetchFn: FetchFn, url: string, init: RequestInit, body: OwnedBytes, opts: ExchangeOptions & { into: ByteSource }): Promise<BytesExchange> {
  try {
    return await run(fetchFn, url, { ...init, body: body.bytes }, opts, async (response, ok) => {
      body.release();
      if (!ok) return { status: response.status, headers: response.headers, text: await readText(response, MAX_ERROR_BODY_BYTES, true) };
      return { status: response.status, headers: response.headers, text: '', body: await readBodyBytes(response, MAX_ANSWER_BODY_BYTES, opts.into) };
    });
  } finally {
    body.release();
  }
}

/** One fetch under the deadline, redirects refused, failures typed; `read` reads the response. */
async function run<T>(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions, read: (response: Response, ok: boolean) => Promise<T>): Promise<T> {
  const { signal: callerSignal, timeout } = opts;
  if (callerSignal?.aborted) throw aborted(callerSignal);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeout);
  const onAbort = () => controller.abort();
  callerSignal?.addEventListener('abort', onAbort, { once: true });
  const sending = sendInit(init, opts.ownFetch === true);
  let consumed = false;
  try {
    const response = await fetchFn(url, { ...sending.init, signal: controller.signal });
    // Fetch has answered: whatever of the body it has not taken yet goes as zeros (see sendInit).
    sending.revoke();
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new SecurityError(`the router answered ${response.status || 'with'} ${REDIRECT_REFUSED}`);
    }
    const result = await read(response, response.status === 200);
    // A router answers 200 only once it has read the whole request: the connection has sent every byte.
    consumed = response.status === 200;
    return result;
  } catch (cause) {
    if (callerSignal?.aborted) throw aborted(callerSignal);
    if (timedOut) throw new APIConnectionTimeoutError(`no complete response within ${timeout} ms`, { cause });
    if (cause instanceof NomyoError) throw cause;
    if (isRedirectRefusal(cause)) throw new SecurityError(REDIRECT_REFUSED, { cause });
    throw new APIConnectionError(`could not reach the router: ${describeCause(cause)}`, { cause });
  } finally {
    sending.revoke();
    sending.done(consumed);
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onAbort);
  }
}

const REDIRECT_REFUSED = 'a redirect: refused, nothing is sent anywhere but the configured routerUrl';
/**
 * Node's fetch refusing a redirect in 'error' mode: "fetch failed", caused by "unexpected redirect".
 * Browsers give a bare network error there (an APIConnectionError): refused all the same.
 */
function isRedirectRefusal(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return err instanceof TypeError && cause instanceof Error && cause.message === 'unexpected redirect';
}

/** A short, safe description of a network failure (error codes only, never request content). */
function describeCause(cause: unknown): string {
  const inner = (cause as { cause?: { code?: unknown } })?.cause;
  const code = inner && typeof inner.code === 'string' ? inner.code : undefined;
  return sanitizeDetail(code ?? (cause instanceof Error ? cause.message : '')) ?? 'network error';
}

