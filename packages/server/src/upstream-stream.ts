/**
 * An upstream's streamed answer, as OpenAI-compatible servers send it (`data: {chunk}` events, then
 * `data: [DONE]`), read as chat.completion.chunk objects one network piece at a time. It tolerates
 * what upstreams differ in: comments and keep-alives, CRLF line ends, `data:` without a space,
 * `usage: null`, empty `choices`, a last chunk without `[DONE]` after it. An `error` event, or a
 * `data: {"error": ...}` one, is the upstream failing part-way: an UpstreamError (its text sealed
 * for the client alone); a stream that breaks off, goes silent or is not SSE is an HttpError. Either
 * ends the streamed answer with a final record that carries it (answer-stream.ts).
 */
import type { Readable } from 'node:stream';
import { EventParser, LineDecoder, MAX_ANSWER_DEPTH, MAX_STREAM_LINE_CHARS, jsonNestingExceeds, type StreamEvent } from '@nomyo/core/protocol';
import { HttpError, UpstreamError, nestedTooDeep } from './http-error.js';
import { upstreamError } from './upstream-error.js';
import type { UpstreamReport } from './types.js';

/** An upstream response body (undici's is a Node.js Readable): pieces of bytes as they arrive; destroying it closes the connection. */
export type UpstreamBody = Readable;

/** What wakes a read that waits: a piece, the end, an error, the body closed. */
const BODY_EVENTS = ['readable', 'end', 'error', 'close'] as const;

/**
 * The chunks of `body`; `stop` follows the client (it aborts when the client goes away) and is
 * aborted here once the stream is over, however it ends. `idleMs` of silence ends it (a TimeoutError).
 * How it failed, if it did, goes into `report` (for the metrics).
 */
export async function* upstreamChunks(body: UpstreamBody, stop: AbortController, idleMs: number, report: UpstreamReport = {}): AsyncGenerator<unknown> {
  const pieces = new PieceReader(body, stop, idleMs);
  // A stream reader's own limits: a chunk of 1 MiB can take 6 Mi characters on its line (`\u` escapes,
  // as Python's json.dumps writes non-ASCII), so lines and events are not held to the record's size.
  const lines = new LineDecoder();
  // An event without data (`event: ping`, a keep-alive) carries nothing: the standard does not dispatch it.
  const events = new EventParser({ skipEventsWithoutData: true });
  let finished = false;
  try {
    for (;;) {
      const piece = await readPiece(pieces, stop, idleMs, report);
      if (piece === undefined) break;
      lines.feed(piece);
      for (let line = nextLine(lines); line !== undefined; line = nextLine(lines)) {
        const event = parse(events, line);
        if (!event) continue;
        if (event.data === '[DONE]') return;
        const chunk = chunkOf(event);
        finished ||= hasFinishReason(chunk);
        yield chunk;
      }
    }
    // Some upstreams end without [DONE]: after a finish reason, that is the end of the answer.
    if (!finished) {
      report.failure = 'connection';
      throw new HttpError(502, 'the inference backend stream ended before the answer did');
    }
  } catch (err) {
    // What readPiece did not name (a silence, a break): the upstream's error event, or what it should not send.
    if (err instanceof HttpError) report.failure ??= err instanceof UpstreamError ? 'status' : 'malformed';
    throw err;
  } finally {
    pieces.close();
    stop.abort();
    body.destroy();
  }
}

/** The next piece, or undefined at the body's end; a silence, a broken connection or the client going away as the error it is. */
async function readPiece(pieces: PieceReader, stop: AbortController, idleMs: number, report: UpstreamReport): Promise<Uint8Array | undefined> {
  try {
    return await pieces.next();
  } catch (err) {
    const reason = stop.signal.reason as Error | undefined;
    if (reason?.name === 'TimeoutError') {
      report.failure = 'timeout';
      throw new HttpError(504, `the inference backend sent nothing for ${idleMs} ms`);
    }
    if (stop.signal.aborted) throw err; // the client went away (or the drain ended it): nobody to tell
    report.failure = 'connection';
    throw new HttpError(502, 'the inference backend connection broke off');
  }
}

/**
 * A body read a piece at a time, each read ended at once by an abort of `stop` (the client gone, the
 * drain, or a read that waited `idleMs`, which this times: the caller's pauses between reads are not
 * the upstream's silence). One set of listeners and one timer for the whole stream, the timer armed
 * again for what is left of the wait, and the body read with `read()`: a timer, a listener and a race
 * of promises of its own made each read 50-100 µs slower in a process back from idle, as every token
 * of a stream finds the router, and the body's async iterator took 45 µs more for the first piece
 * (docs/performance.md).
 */
class PieceReader {
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the read that waits began. */
  #since: number | undefined;
  /** Wakes the read that waits, to look at the body again. */
  #wake: (() => void) | undefined;
  /** Ends the read that waits, with the abort's reason. */
  #abandon: ((reason: unknown) => void) | undefined;
  readonly #onBody = () => this.#wake?.();
  readonly #onAbort = () => this.#abandon?.(this.stop.signal.reason);

  constructor(
    private readonly body: UpstreamBody,
    private readonly stop: AbortController,
    private readonly idleMs: number,
  ) {
    // Left on the body for good: an error it emits after the stream is over must meet a listener.
    for (const name of BODY_EVENTS) body.on(name, this.#onBody);
    stop.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#arm(idleMs);
  }

  /** The next piece, or undefined at the end; rejects with the abort's reason once `stop` aborts, or with what broke the body. */
  async next(): Promise<Uint8Array | undefined> {
    this.#since = Date.now();
    try {
      for (;;) {
        if (this.stop.signal.aborted) throw this.stop.signal.reason;
        const piece = this.body.read() as Uint8Array | null;
        if (piece !== null) return piece;
        if (this.body.readableEnded) return undefined;
        if (this.body.errored) throw this.body.errored;
        if (this.body.destroyed) throw new Error('the body closed before its end');
        await new Promise<void>((resolve, reject) => {
          this.#wake = resolve;
          this.#abandon = reject;
        });
      }
    } finally {
      this.#since = undefined;
      this.#wake = undefined;
      this.#abandon = undefined;
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    this.stop.signal.removeEventListener('abort', this.#onAbort);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      const left = this.#since === undefined ? this.idleMs : this.#since + this.idleMs - Date.now();
      if (left > 0) this.#arm(left);
      else this.stop.abort(new DOMException('timed out', 'TimeoutError'));
    }, ms);
    // The stream's connections keep the process up; a stream nobody finishes must not.
    this.#timer.unref?.();
  }
}

/** The next line of the pieces fed so far (read a slice at a time: a large piece's lines are not all held at once). */
function nextLine(lines: LineDecoder): string | undefined {
  try {
    return lines.next();
  } catch {
    throw new HttpError(502, `the inference backend sent a line over ${MAX_STREAM_LINE_CHARS} characters`);
  }
}

function parse(events: EventParser, line: string): StreamEvent | undefined {
  try {
    return events.push(line);
  } catch (err) {
    // The parser's own words on which limit it was (they quote nothing the upstream sent).
    throw new HttpError(502, `the inference backend sent ${(err as Error).message.replace(/^malformed stream: /, '')}`);
  }
}

function chunkOf(event: StreamEvent): unknown {
  if (event.name === 'error') throw midStream(event.data);
  // The client refuses a record nested deeper (a caller's JSON.stringify recurses): the upstream's
  // fault, said as such.
  if (jsonNestingExceeds(event.data, MAX_ANSWER_DEPTH)) throw new HttpError(502, nestedTooDeep('a chunk'));
  let chunk: unknown;
  try {
    chunk = JSON.parse(event.data);
  } catch {
    throw new HttpError(502, 'the inference backend sent an event that is not JSON');
  }
  if (typeof chunk === 'object' && chunk !== null && 'error' in chunk && !('choices' in chunk)) throw midStream(event.data);
  return chunk;
}

function midStream(text: string): UpstreamError {
  return new UpstreamError(502, 'the inference backend failed part-way through the answer', upstreamError(text));
}

function hasFinishReason(chunk: unknown): boolean {
  const choices = (chunk as { choices?: unknown } | null)?.choices;
  return Array.isArray(choices) && choices.some((c) => typeof (c as { finish_reason?: unknown } | null)?.finish_reason === 'string');
}
