/**
 * `maxConcurrent`: how many requests the router handles at once. One over the limit is refused at
 * once, before its body is read, with 503 and `Retry-After: 1` (the client retries after it), so
 * that a burst sheds load instead of piling up behind the upstream. A request whose body turns out
 * to be drained unkept gives its place back at once (dispatch.ts): it is no work, and a slow sender
 * must not hold a place until the request timeout.
 */
import type { ServerResponse } from 'node:http';
import { whenRequestEnds } from './response-end.js';

export const OVERLOADED = 'the router is at its limit of concurrent requests: retry shortly';
export const OVERLOAD_HEADERS: Readonly<Record<string, string>> = { 'Retry-After': '1' };

export class ConcurrencyLimit {
  /** The requests holding a place, each with what gives it back (once). */
  readonly #holders = new WeakMap<ServerResponse, () => void>();
  #active = 0;

  /** `max`: undefined for no limit. */
  constructor(private readonly max: number | undefined) {}

  /** Takes a place for the request of `res` until its response ends; false when there is none. */
  admit(res: ServerResponse): boolean {
    if (this.max === undefined) return true;
    if (this.#active >= this.max) return false;
    this.#active++;
    const giveBack = (): void => {
      if (!this.#holders.delete(res)) return;
      this.#active--;
    };
    this.#holders.set(res, giveBack);
    whenRequestEnds(res, giveBack);
    return true;
  }

  /** Gives back the place of a request that turns out to need none (its body drained unkept), before its response ends. */
  release(res: ServerResponse): void {
    this.#holders.get(res)?.();
  }
}
