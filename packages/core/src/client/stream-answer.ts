/**
 * A streamed answer read as it arrives: bytes → lines → events → records → chunks
 * (protocol/stream/), on the body of a ResponseStream. The call that sent the request resolves once
 * the header event has come; the chunks are read after that, as the caller asks for them, and
 * nothing is retried any more.
 */
import type { ChatCompletionChunk } from '../protocol/stream/chunk.js';
import { EventParser, type StreamEvent } from '../protocol/stream/events.js';
import { LineDecoder } from '../protocol/stream/lines.js';
import type { StreamOpener, StreamStep } from '../protocol/stream/open-stream.js';
import type { SealedError } from '../protocol/sealed-error.js';
import { MAX_STREAM_FILLER_CHARS, MAX_STREAM_LINE_CHARS, STREAM_IDLE_TIMEOUT_MS } from '../protocol/constants.js';
import { APIUserAbortError, type APIError } from '../errors.js';
import type { ResponseStream } from '../transport/response-stream.js';
import { sealedAPIError } from './sealed-error.js';

export class StreamAnswer {
  /**
   * A network piece may bring many records: its lines are decoded, and each record opened, only when
   * the caller asks for its chunk (the header first, so the call resolves without waiting for the
   * records that came with it). A line or event the parser refuses is met only after the events
   * before it are delivered, so what the caller gets does not depend on how the network cut the body up.
   */
  /**
   * Before the header no valid line is longer than the filler allowed between events (a header's
   * data line is far shorter): a longer one is refused as it comes, not held to the records' limit.
   */
  readonly #lines = new LineDecoder(MAX_STREAM_FILLER_CHARS);
  /** One data line an event: more is refused as it comes (the opener would refuse the event). */
  readonly #parser = new EventParser({ maxDataLines: 1 });
  #bodyEnded = false;
  /** At the body's end: a line or an event it began and never completed. */
  #rest = false;

  constructor(
    private readonly stream: ResponseStream,
    private readonly opener: StreamOpener,
    private readonly idleMs = STREAM_IDLE_TIMEOUT_MS,
  ) {}

  /** Reads until the header event has come: from then on only silence times out. */
  async start(): Promise<void> {
    try {
      while (!this.opener.started) {
        const step = await this.#next();
        // Nothing can come before the header: the opener refuses any other event.
        if (step === 'end') this.opener.end(this.#rest); // the body ended first: cut short
      }
      // Aborted while the header's keys were made (Web Crypto derives them asynchronously): no stream.
      this.stream.throwIfStopped();
      this.#lines.maxLineChars = MAX_STREAM_LINE_CHARS;
      this.stream.started(this.idleMs);
    } catch (err) {
      this.stream.close();
      throw err;
    }
  }

  /**
   * The chunks as they arrive; at the final record, the body is read to its end (nothing may follow
   * it), then the iteration ends, or throws the error the final record carries. Stopping early (a
   * `break`, an abort) closes the connection; after an abort nothing more is delivered, not even a
   * chunk that came in the same network piece.
   */
  async *chunks(): AsyncGenerator<ChatCompletionChunk> {
    let sealed: SealedError | undefined;
    try {
      for (let step = await this.#next(); step !== 'end'; step = await this.#next()) {
        if (step?.kind === 'chunk') {
          this.stream.throwIfStopped();
          yield step.chunk;
          // The caller has it and asks for the next: the next record's decipher, off this one's path.
          this.opener.prepareNext();
        } else if (step?.kind === 'error') sealed = step.error;
      }
      this.opener.end(this.#rest);
    } finally {
      this.stream.close();
    }
    if (sealed) throw this.#sealedError(sealed);
  }

  /** The next event opened (undefined for the header), reading the body when the lines read hold none; `end` at the body's end. */
  async #next(): Promise<StreamStep | undefined | 'end'> {
    for (;;) {
      const event = this.#event();
      if (event) return this.opener.event(event);
      if (this.#bodyEnded) return 'end';
      await this.#read();
    }
  }

  /** The next event the lines read so far complete, or undefined. */
  #event(): StreamEvent | undefined {
    for (let line = this.#lines.next(); line !== undefined; line = this.#lines.next()) {
      const event = this.#parser.push(line);
      if (event) return event;
    }
    return undefined;
  }

  /**
   * Reads one piece of the body into the line decoder. After the final record the answer is whole
   * and authenticated: the body is read to its end only to refuse what follows it, so a connection
   * that then fails or goes silent ends the stream as its end would (an abort still throws).
   */
  async #read(): Promise<void> {
    let piece: Uint8Array | undefined;
    try {
      piece = await this.stream.read(this.opener.started, this.opener.ended);
    } catch (err) {
      if (!this.opener.ended || err instanceof APIUserAbortError) throw err;
    }
    if (piece) return this.#lines.feed(piece);
    this.#bodyEnded = true;
    this.#rest = this.#lines.end() !== undefined || this.#parser.pending;
  }

  /** The final record's error, typed like an error response: by its status, else an HTTP code it names, else 502. */
  #sealedError(error: SealedError): APIError {
    const code = typeof error.code === 'number' && error.code >= 400 && error.code <= 599 ? error.code : undefined;
    return sealedAPIError(error, error.status ?? code ?? 502, this.stream.headers, this.opener.payloadId);
  }
}
