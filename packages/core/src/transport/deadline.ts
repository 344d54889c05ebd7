/**
 * The time limits of one exchange, and what ends it: the caller's signal; the timeout, which covers
 * the whole response (for a stream: until its header event); then, for a stream, the idle timeout,
 * which only silence counts against: the time a read of the body waits for a piece. `signal` aborts
 * fetch and the body's reading; `error` says why, as the error the caller gets.
 */
import { APIConnectionError, APIConnectionTimeoutError, NomyoError, StreamTruncatedError } from '../errors.js';
import { aborted } from './abort.js';
import { sanitizeDetail } from './detail.js';

/**
 * How long a whole streamed answer (its final record come) waits for its body's end, at most: the
 * end is read only to refuse what would follow, and a peer that keeps the connection open must not
 * hold up an answer that is complete for as long as a token may take.
 */
const WHOLE_ANSWER_END_MS = 5_000;

export class Deadline {
  readonly #controller = new AbortController();
  readonly #onCallerAbort = () => {
    // Aborted, the exchange times nothing more: no timer outlives it (a stream aborted unread).
    clearTimeout(this.#timer);
    this.#controller.abort();
  };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expired: 'timeout' | 'idle' | undefined;
  #idleMs = 0;
  #lastActivity = 0;
  /** A read of the body is waiting: silence counts only then, not while the caller takes its time. */
  #waiting = false;
  /** The answer is whole: nothing that still comes extends the idle limit. */
  #whole = false;
  #disposed = false;

  /**
   * @param awaited what the timeout waits for, as its error names it: the whole response, or a
   *   stream's header event
   */
  constructor(
    private readonly timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
    private readonly awaited: 'complete response' | 'stream header' = 'complete response',
  ) {
    if (callerSignal?.aborted) throw aborted(callerSignal);
    callerSignal?.addEventListener('abort', this.#onCallerAbort, { once: true });
    this.#timer = setTimeout(() => this.#expire('timeout'), timeoutMs);
  }

  /** Aborted when the caller aborts or a limit passes: give it to fetch. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** From now on only silence counts: `ms` without {@link touch} ends the exchange. */
  idle(ms: number): void {
    clearTimeout(this.#timer);
    this.#idleMs = ms;
    this.#lastActivity = Date.now();
    this.#armIdle(ms);
  }

  /**
   * A read of the body starts waiting: the silence counts from now. A caller that reads slowly (or
   * starts late) has its pieces waiting for it, so the time between its reads is no silence.
   */
  waiting(): void {
    if (this.#whole) return;
    this.#waiting = true;
    this.#lastActivity = Date.now();
    // The idle timer lapsed while no read waited: this read is timed again.
    if (this.#idleMs > 0 && this.#timer === undefined && !this.#disposed && !this.#controller.signal.aborted) this.#armIdle(this.#idleMs);
  }

  /** Something arrived (a piece of the body, a heartbeat): the read waits no more. */
  touch(): void {
    if (this.#whole) return;
    this.#waiting = false;
    this.#lastActivity = Date.now();
  }

  /**
   * The answer is whole (a stream's final record has come): the body is read to its end only to
   * refuse what follows, so from now on the idle limit (at most WHOLE_ANSWER_END_MS) counts from
   * here, and nothing that still comes (a heartbeat, say) extends it. A peer cannot keep the caller
   * waiting for the end of an answer that is already complete.
   */
  whole(): void {
    if (this.#whole) return;
    // A read that waits from now on, the last one: nothing after this call resets it.
    this.waiting();
    this.#whole = true;
    if (this.#idleMs > WHOLE_ANSWER_END_MS && !this.#disposed && !this.#controller.signal.aborted) {
      this.#idleMs = WHOLE_ANSWER_END_MS;
      clearTimeout(this.#timer);
      this.#armIdle(WHOLE_ANSWER_END_MS);
    }
  }

  /** Ends it: the connection is closed if it was still open (a stream the caller stopped reading). */
  cancel(): void {
    this.#controller.abort();
  }

  /**
   * `cause` as the error the caller gets: its abort, a limit that passed, or the failure itself,
   * typed; in a stream whose header has come (`inStream`), a network failure cut the answer short.
   */
  error(cause: unknown, inStream = false): NomyoError {
    if (this.callerSignal?.aborted) return aborted(this.callerSignal);
    if (this.#expired === 'timeout') return new APIConnectionTimeoutError(`no ${this.awaited} within ${this.timeoutMs} ms`, { cause });
    if (this.#expired === 'idle') return new APIConnectionTimeoutError(`nothing arrived for ${this.#idleMs} ms, not even a heartbeat`, { cause });
    if (cause instanceof NomyoError) return cause;
    if (inStream) return new StreamTruncatedError(`the streamed answer was cut short: ${describeCause(cause)}`, { cause });
    return new APIConnectionError(`could not reach the router: ${describeCause(cause)}`, { cause });
  }

  /** Clears the timers and the link to the caller's signal. */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#disposed = true;
    this.callerSignal?.removeEventListener('abort', this.#onCallerAbort);
  }

  #expire(why: 'timeout' | 'idle'): void {
    this.#expired = why;
    this.#controller.abort();
  }

  /**
   * One timer for the idle limit, armed again for what is left instead of being reset on every piece.
   * It lapses when it finds no read waiting, and the next read arms it again: a stream the caller
   * stopped reading (or dropped) keeps no timer, and none keeps a process alive (unref).
   */
  #armIdle(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#waiting) return;
      const left = this.#lastActivity + this.#idleMs - Date.now();
      if (left <= 0) this.#expire('idle');
      else this.#armIdle(left);
    }, ms);
    (this.#timer as { unref?: () => void }).unref?.();
  }
}

/** A short, safe description of a network failure (an error code, or the runtime's own reason; never request content). */
function describeCause(cause: unknown): string {
  // Node's fetch says "fetch failed" and puts the reason in its cause: a code (ECONNREFUSED), or a
  // message alone ("bad port").
  const inner = (cause as { cause?: { code?: unknown; message?: unknown } })?.cause;
  const reason = typeof inner?.code === 'string' ? inner.code : typeof inner?.message === 'string' && inner.message !== '' ? inner.message : undefined;
  return sanitizeDetail(reason ?? (cause instanceof Error ? cause.message : '')) ?? 'network error';
}
