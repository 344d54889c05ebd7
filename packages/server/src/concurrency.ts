/**
 * `maxConcurrent`: how many requests the router handles at once. One over the limit is refused at
 * once, before its body is read, with 503 and `Retry-After: 1` (the client retries after it), so
 * that a burst sheds load instead of piling up behind the upstream. A request whose body the router
 * will not take is answered at once, unread (receive.ts), so a slow sender of it holds its place no
 * longer than its answer takes.
 */
import type { ServerResponse } from 'node:http';
import { whenRequestEnds } from './response-end.js';

export const OVERLOADED = 'the router is at its limit of concurrent requests: retry shortly';
export const OVERLOAD_HEADERS: Readonly<Record<string, string>> = { 'Retry-After': '1' };

export class ConcurrencyLimit {
  #active = 0;

  /** `max`: undefined for no limit. */
  constructor(private readonly max: number | undefined) {}

  /** Takes a place for the request of `res` until its response ends; false when there is none. */
  admit(res: ServerResponse): boolean {
    if (this.max === undefined) return true;
    if (this.#active >= this.max) return false;
    this.#active++;
    whenRequestEnds(res, () => this.#active--); // once
    return true;
  }
}
