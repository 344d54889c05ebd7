/**
 * One HTTP exchange with a deadline: the timeout covers the whole answer, body included, and is
 * linked to the caller's signal. Redirects are refused, bodies are read up to a cap, and network
 * failures become typed errors.
 */
import { MAX_ANSWER_BODY_BYTES, MAX_ERROR_BODY_BYTES } from '../protocol/constants.js';
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError, NomyoError, SecurityError } from '../errors.js';
import { sanitizeDetail } from './detail.js';

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

export interface Exchange {
  status: number;
  headers: Headers;
  body: string;
}

export interface ExchangeOptions {
  timeout: number;
  signal?: AbortSignal | undefined;
}

const decoder = new TextDecoder();

/** Runs `fetch` and reads the body as text, all under one deadline. */
export async function exchange(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions): Promise<Exchange> {
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
  try {
    // 'manual': a redirect must never take the request (or the router key fetch) anywhere else,
    // least of all from https to http.
    const response = await fetchFn(url, { ...init, redirect: 'manual', signal: controller.signal });
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new SecurityError(`the router answered ${response.status || 'with'} a redirect: refused, nothing is sent anywhere but the configured routerUrl`);
    }
    const ok = response.status === 200;
    const body = await readText(response, ok ? MAX_ANSWER_BODY_BYTES : MAX_ERROR_BODY_BYTES, !ok);
    return { status: response.status, headers: response.headers, body };
  } catch (cause) {
    if (callerSignal?.aborted) throw aborted(callerSignal);
    if (timedOut) throw new APIConnectionTimeoutError(`no complete answer within ${timeout} ms`, { cause });
    if (cause instanceof NomyoError) throw cause;
    throw new APIConnectionError(`could not reach the router: ${describeCause(cause)}`, { cause });
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The body as text, at most `limit` bytes: beyond it an answer is refused (`truncate` false) or an
 * error body is cut (`truncate` true; only its first 100 characters are ever shown).
 */
async function readText(response: Response, limit: number, truncate: boolean): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  // HTTP framing holds the body to its Content-Length: the runtime's own reader is then safe and fastest.
  if (declared <= limit) return response.text();
  if (declared > limit && !truncate) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(limit);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.length > limit) {
      await reader.cancel().catch(() => undefined);
      if (!truncate) throw tooLarge(limit);
      chunks.push(value.subarray(0, limit - total));
      total = limit;
      break;
    }
    chunks.push(value);
    total += value.length;
  }
  if (chunks.length === 1) return decoder.decode(chunks[0]);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return decoder.decode(all);
}

function tooLarge(limit: number): SecurityError {
  return new SecurityError(`the router's answer exceeds ${limit} bytes: refused`);
}

function aborted(signal: AbortSignal): APIUserAbortError {
  return new APIUserAbortError('request aborted by the caller', { cause: signal.reason });
}

/** A short, safe description of a network failure (error codes only, never request content). */
function describeCause(cause: unknown): string {
  const inner = (cause as { cause?: { code?: unknown } })?.cause;
  const code = inner && typeof inner.code === 'string' ? inner.code : undefined;
  return sanitizeDetail(code ?? (cause instanceof Error ? cause.message : '')) ?? 'network error';
}

/** Waits for `work`, or rejects with APIUserAbortError as soon as `signal` aborts (the work goes on for others). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The requests following each caller signal, behind that signal's one listener. */
const followers = new WeakMap<AbortSignal, { controllers: Set<AbortController>; onAbort: () => void }>();

/**
 * An internal signal for one request that follows the caller's. However many requests share a
 * caller's signal, it carries a single listener (Node warns past ten), removed with the last request.
 */
export function followSignal(signal: AbortSignal | undefined): { signal: AbortSignal | undefined; release(): void } {
  if (!signal) return { signal: undefined, release: () => {} };
  const controller = new AbortController();
  if (signal.aborted) {
    controller.abort(signal.reason);
    return { signal: controller.signal, release: () => {} };
  }
  let entry = followers.get(signal);
  if (!entry) {
    const controllers = new Set<AbortController>();
    const onAbort = () => {
      followers.delete(signal);
      for (const c of controllers) c.abort(signal.reason);
    };
    entry = { controllers, onAbort };
    followers.set(signal, entry);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const { controllers, onAbort } = entry;
  controllers.add(controller);
  return {
    signal: controller.signal,
    release: () => {
      controllers.delete(controller);
      if (controllers.size === 0 && followers.get(signal) === entry) {
        followers.delete(signal);
        signal.removeEventListener('abort', onAbort);
      }
    },
  };
}
