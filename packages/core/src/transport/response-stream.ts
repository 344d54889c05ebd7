/**
 * The body of a streamed answer, read as it arrives, under its exchange's {@link Deadline}: until the
 * header event the whole timeout counts, then only silence does. Every way it can end is typed: the
 * caller's abort, a timeout, or the connection failing (the answer cut short).
 */
import type { Deadline } from './deadline.js';

export class ResponseStream {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #closed = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    /** The response's headers (a sealed error at the end is typed with them). */
    readonly headers: Headers,
    private readonly deadline: Deadline,
  ) {
    this.#reader = body.getReader();
    // Aborted or timed out: a read that waits ends now, even on a body that does not heed the signal
    // (a custom fetch's may not). One listener a stream, nothing a read.
    deadline.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = () => {
    if (!this.#closed) this.#reader.cancel().catch(() => undefined);
  };

  /**
   * The next piece of the body, or undefined at its end. Throws the typed error that ended it. Once
   * the answer is `whole` (its final record has come), what still comes extends no limit.
   */
  async read(started: boolean, whole = false): Promise<Uint8Array | undefined> {
    try {
      if (whole) this.deadline.whole();
      this.deadline.waiting();
      const { done, value } = await this.#reader.read();
      // Aborted or timed out meanwhile, by a body that goes on regardless (a fetch of the caller's
      // may not tie its body to the signal): what ended the exchange is thrown, not the piece or the end.
      if (this.deadline.signal.aborted) throw this.deadline.signal.reason;
      if (done) {
        this.close();
        return undefined;
      }
      this.deadline.touch();
      return value;
    } catch (cause) {
      this.close();
      throw this.deadline.error(cause, started);
    }
  }

  /**
   * Throws what ended the stream if the caller aborted it (or a limit passed) since the last read:
   * chunks already read are not delivered after an abort.
   */
  throwIfStopped(): void {
    if (!this.#closed && this.deadline.signal.aborted) throw this.deadline.error(undefined, true);
  }

  /** The header came: from now on `idleMs` of silence ends the stream. */
  started(idleMs: number): void {
    this.deadline.idle(idleMs);
  }

  /** Stops reading and closes the connection; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.deadline.signal.removeEventListener('abort', this.#onAbort);
    this.deadline.cancel();
    this.deadline.dispose();
    this.#reader.cancel().catch(() => undefined);
  }
}
