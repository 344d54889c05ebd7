/**
 * One HTTP exchange with a deadline: the timeout covers the whole answer, body included, and is
 * linked to the caller's signal. Network failures become typed errors.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError } from '../errors.js';

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

/** Runs `fetch` and reads the body as text, all under one deadline. */
export async function exchange(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions): Promise<Exchange> {
  const { signal: callerSignal, timeout } = opts;
  if (callerSignal?.aborted) throw new APIUserAbortError('request aborted by the caller', { cause: callerSignal.reason });
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeout);
  const onAbort = () => controller.abort();
  callerSignal?.addEventListener('abort', onAbort, { once: true });
  try {
    const response = await fetchFn(url, { ...init, signal: controller.signal });
    const body = await response.text();
    return { status: response.status, headers: response.headers, body };
  } catch (cause) {
    if (callerSignal?.aborted) throw new APIUserAbortError('request aborted by the caller', { cause: callerSignal.reason });
    if (timedOut) throw new APIConnectionTimeoutError(`no complete answer within ${timeout} ms`, { cause });
    throw new APIConnectionError(`could not reach the router: ${describeCause(cause)}`, { cause });
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onAbort);
  }
}

/** A short, safe description of a network failure (error codes only, never request content). */
function describeCause(cause: unknown): string {
  const inner = (cause as { cause?: { code?: unknown } })?.cause;
  const code = inner && typeof inner.code === 'string' ? inner.code : undefined;
  return code ?? (cause instanceof Error ? cause.message.slice(0, 100) : 'network error');
}

/** Waits for `work`, or rejects with APIUserAbortError as soon as `signal` aborts (the work goes on for others). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(new APIUserAbortError('request aborted by the caller', { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new APIUserAbortError('request aborted by the caller', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
