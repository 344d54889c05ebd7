/**
 * Aborts and waits, without AbortSignal.any (Node 20.3+) or AbortSignal.timeout's unref'd timers, so
 * that every runtime the library supports has them: the client's per-request signals and the
 * reference router's upstream calls share them.
 */
import { APIUserAbortError } from '../errors.js';

/** What an abort by the caller's signal is. */
export function aborted(signal: AbortSignal): APIUserAbortError {
  return new APIUserAbortError('request aborted by the caller', { cause: signal.reason });
}

/** Waits for `work`, or rejects with APIUserAbortError as soon as `signal` aborts (the work goes on for others). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined); // given up on before it ends: its failure goes to no one
    return Promise.reject(aborted(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Waits for `work`, or rejects with `signal`'s reason as soon as it aborts: for a fetch, or a body
 * read, that may not heed the signal itself (a custom fetch may drop it). What `work` still gives
 * after the abort goes to `discard` (a buffer to release); its failure then goes nowhere.
 */
export function heedAbort<T>(work: Promise<T>, signal: AbortSignal, discard?: (late: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      settled = true;
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (settled) discard?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A controller aborted when any of `signals` aborts (with its reason), or after `timeoutMs` (with a
 * TimeoutError). Aborting it removes its listeners and its timer.
 */
export function linkedController(signals: readonly AbortSignal[], timeoutMs?: number): AbortController {
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      return controller;
    }
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true, signal: controller.signal });
  }
  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), timeoutMs);
    (timer as { unref?: () => void }).unref?.();
    controller.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  }
  return controller;
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
