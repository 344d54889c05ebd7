/**
 * A streamed v2 answer (docs/protocol.md, "Streamed answers (v2)"), written as the model makes it:
 * the header event, one padded, sealed record per chunk, each flushed as it comes, a heartbeat
 * comment after every silence of the model, and the final record, which carries the error when the
 * model failed part-way, or "router shutting down" when a drain's deadline ended it (drain.ts).
 * Backpressure holds: the next chunk is not asked for until the client has taken the last one, so a
 * client that stops reading stops the upstream read, and nothing piles up here.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EVENT_STREAM_CONTENT_TYPE, type SealedError, type StreamSealer } from '@nomyo/core/protocol';
import { SHUTDOWN_ERROR, isShutdown } from './drain.js';
import { HttpError, UpstreamError } from './http-error.js';
import type { RouterResponse, StreamWatch } from './respond.js';
import type { RequestSummary, UpstreamReport } from './types.js';
import { chunkJson } from './chunk-json.js';
import { heeding, stopModel } from './model-abort.js';

/** Headers of a streamed answer: proxies and CDNs must pass each event on at once (no buffering, no compression). */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': EVENT_STREAM_CONTENT_TYPE,
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};

const HEARTBEAT = ': keep-alive\n\n';
const EMPTY = new Uint8Array(0);
export interface AnswerStreamOptions {
  /** A heartbeat comment after this many ms in which nothing was written. */
  heartbeatMs: number;
  /** A client that takes nothing for this many ms, its socket full, is cut off; 0: never. */
  stallMs: number;
  /** Told that a client was cut off for taking nothing for `stallMs`, with its request's log fields (StreamWatch). */
  onStall(fields: LogFields): void;
  /** Told the name of an error that was not the model's or the upstream's (a bug; its text may quote plaintext), with its request's log fields. */
  onInternalError(name: string, fields: LogFields): void;
  /** Told that a model went on after its signal aborted, past the grace it gets (model-abort.ts): its request ended without it. With its request's log fields. */
  onDeafModel(fields: LogFields): void;
  /** The request's upstream report (a request's own options): a chunk refused here is the upstream's failure, counted there. */
  upstream?: UpstreamReport | undefined;
}

/** A request's log fields, for a line logged of it: what matches it with its request's line (StreamWatch). */
export type LogFields = StreamWatch['fields'];

/** How a stream ended: with its final record (empty, or carrying an error), or cut off (the client gone, or stalled). */
export type StreamOutcome = NonNullable<RequestSummary['stream_outcome']>;

/** The 200 response whose body is the streamed answer made of `chunks`. */
export function streamResponse(sealer: StreamSealer, chunks: AsyncIterable<unknown>, options: AnswerStreamOptions): RouterResponse {
  return {
    status: 200,
    headers: { ...STREAM_HEADERS },
    body: EMPTY,
    stream: (res, signal, watch) => writeStream(new EventSink(res, options, watch, () => sealer.prepareNext()), sealer, chunks, signal, options, watch.fields),
  };
}

async function writeStream(sink: EventSink, sealer: StreamSealer, chunks: AsyncIterable<unknown>, signal: AbortSignal, options: AnswerStreamOptions, fields: LogFields): Promise<StreamOutcome> {
  let iterator: AsyncIterator<unknown> | undefined;
  let error: SealedError | undefined;
  let deaf = false;
  const onDeaf = () => {
    if (deaf) return;
    deaf = true;
    options.onDeafModel(fields);
  };
  try {
    await sink.write(sealer.header());
    // The headers and the header event leave now, in one packet, not behind the first records: the
    // client resolves its fetch and derives the stream's keys while they are sealed.
    sink.flush();
    // Taken in the try, after the header: a model that throws as it is asked for its chunks has its
    // heartbeat stopped (finally), and its error told in a final record the client can open.
    iterator = chunks[Symbol.asyncIterator]();
    // A model deaf to its signal is left waiting on its own (model-abort.ts): the stream ends without it.
    const pump = { inModel: false };
    // Only a wait on the model is the model's: one on the client's socket ends as the client does.
    await heeding(writeRecords(sink, sealer, iterator, signal, pump, options.upstream), signal, onDeaf, () => pump.inModel);
  } catch (err) {
    // A client that went away stops the model with an abort: that is no error to report.
    if (!sink.closed && !signal.aborted) error = streamError(err, options, fields);
  } finally {
    sink.stopHeartbeat();
  }
  if (!sink.closed && isShutdown(signal.reason)) {
    // The drain deadline: the model is stopped, and the client told why in a final record.
    error = SHUTDOWN_ERROR;
    await stopModel(iterator, signal, deaf, onDeaf);
  } else if (sink.closed || signal.aborted) {
    // The client went away: the model's signal has stopped it; a model that ignores it is told here.
    await stopModel(iterator, signal, deaf, onDeaf);
    sink.destroy();
    return 'aborted';
  } else if (error) {
    // A chunk refused here or by normalisingModel: the model is stopped (its own errors have ended it already).
    await stopModel(iterator, signal, deaf, onDeaf);
  }
  // Cut off by the stall limit, or gone, before it all left: no complete answer.
  if (!(await sink.end(await sealer.final(error)))) return 'aborted';
  return error ? 'error' : 'complete';
}

/** A record for each chunk of the model's, each written as it comes, until the model ends, the client goes or the signal aborts. */
async function writeRecords(sink: EventSink, sealer: StreamSealer, iterator: AsyncIterator<unknown>, signal: AbortSignal, pump: { inModel: boolean }, upstream: UpstreamReport | undefined): Promise<void> {
  for (;;) {
    if (sink.closed || signal.aborted) return;
    pump.inModel = true;
    const next = await iterator.next();
    pump.inModel = false;
    // Aborted meanwhile: what the model still gave goes nowhere (the stream may have ended without it).
    if (next.done || signal.aborted) return;
    const room = sink.record(await sealer.record(chunkJson(next.value, upstream)));
    if (room) await room;
  }
}

/** What the final record says of an error: the upstream's own reason, our own text, or "internal" (a bug, logged by name). */
function streamError(err: unknown, options: AnswerStreamOptions, fields: LogFields): SealedError {
  if (err instanceof UpstreamError) return err.sealed;
  if (err instanceof HttpError) return { message: err.detail, type: 'upstream_error', code: null, status: err.status };
  options.onInternalError(err instanceof Error ? err.name : typeof err, fields);
  return { message: 'internal server error', type: 'server_error', code: null, status: 500 };
}

/**
 * The response as a sink of events: each written at once (Node sends every write; nothing is held),
 * `write` resolving once the socket can take more, and a heartbeat comment in every silence. A client
 * that stops reading holds the model's request through backpressure: past `stallMs` of taking
 * nothing, its connection is closed, and with it the model's request (a client reached through nginx
 * meets nginx's `send_timeout` first).
 */
class EventSink {
  #lastWrite = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waiting = false;
  /** The socket corked for this turn's writes, until the next tick. */
  #corked: Socket | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: Pick<AnswerStreamOptions, 'heartbeatMs' | 'stallMs' | 'onStall'>,
    private readonly watch: StreamWatch,
    /** A turn's records have left: the next one's cipher may be made, off their path. */
    private readonly sent: () => void,
  ) {
    this.#arm(options.heartbeatMs);
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** Writes a record's event (see {@link write}). */
  record(text: string): Promise<void> | undefined {
    if (!this.closed) this.watch.firstRecord();
    return this.write(text);
  }

  /**
   * Writes `text`: undefined when the socket takes more at once (most records: no promise to await),
   * else a promise that resolves once it has room again (or is gone).
   */
  write(text: string): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.#lastWrite = Date.now();
    this.watch.written(text);
    // Records sealed in one turn (the chunks of one upstream read) leave in one packet.
    this.#cork();
    return this.res.write(text) ? undefined : this.#room();
  }

  async #room(): Promise<void> {
    this.#waiting = true;
    try {
      await this.#taken('drain');
    } finally {
      this.#waiting = false;
    }
  }

  /**
   * Resolves once the response emits `event` ('drain': room for more; 'finish': all of it handed to
   * the socket), to true, or closes first, to false. A client that does not take it within `stallMs`
   * has its connection closed.
   */
  #taken(event: 'drain' | 'finish'): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const { stallMs, onStall } = this.options;
      let stalled: ReturnType<typeof setTimeout> | undefined;
      const socket = this.res.socket;
      const settle = (taken: boolean) => {
        clearTimeout(stalled);
        this.res.off(event, onEvent);
        this.res.off('close', onClose);
        resolve(taken);
      };
      // A destroyed connection (the stall limit below, the drain's last second) calls its pending
      // writes back, and the response then emits 'finish' for what never left (Node.js 20, 22): taken
      // only if the socket stands.
      const onEvent = () => settle(socket?.destroyed !== true);
      const onClose = () => settle(false);
      if (stallMs > 0) stalled = setTimeout(() => (onStall(this.watch.fields), onClose(), this.res.destroy()), stallMs);
      this.res.on(event, onEvent);
      this.res.on('close', onClose);
    });
  }

  /**
   * Writes the last event and ends the response; resolves once it is all handed to the socket
   * (true), or the connection is closed (false). The stall limit holds here too: a client that
   * stopped reading near the end, the last events in the socket's buffer, held its connection and
   * its request's place for good.
   */
  end(text: string): Promise<boolean> {
    this.stopHeartbeat();
    if (this.closed) return Promise.resolve(false);
    this.watch.firstRecord();
    this.watch.written(text);
    // What is corked leaves first: nothing is ended behind a cork.
    this.#uncork();
    const taken = this.#taken('finish');
    this.res.end(text);
    return taken;
  }

  /** Sends what this turn has written so far. */
  flush(): void {
    this.#uncork();
  }

  destroy(): void {
    this.res.destroy();
  }

  stopHeartbeat(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Holds this turn's writes until the next tick, on the socket: ServerResponse.cork() of Node.js 22
   * (22.23.5) never emits 'drain' once a write returned false, and ends a corked response with the
   * chunked terminator before the corked events (tests/runtimes/router-runtimes.test.ts).
   */
  #cork(): void {
    const socket = this.res.socket;
    if (this.#corked || !socket) return;
    this.#corked = socket;
    socket.cork();
    process.nextTick(() => {
      if (!this.#corked) return; // sent already (flush, end)
      this.#uncork();
      this.sent();
    });
  }

  #uncork(): void {
    const socket = this.#corked;
    this.#corked = undefined;
    socket?.uncork();
  }

  /** One timer, armed again for what is left of the silence instead of being reset on every write. */
  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      // Closed, the response takes no heartbeat: armed again, the timer would go on for as long as
      // writeStream waits on a model that ignores its signal (the grace of model-abort.ts).
      if (this.closed) return void (this.#timer = undefined);
      const left = this.#lastWrite + this.options.heartbeatMs - Date.now();
      if (left > 0) return this.#arm(left);
      // A client that is not reading gets no more: the heartbeat is for proxies that time out silence.
      if (!this.#waiting) {
        this.#lastWrite = Date.now();
        this.watch.written(HEARTBEAT);
        this.res.write(HEARTBEAT);
      }
      this.#arm(this.options.heartbeatMs);
    }, ms);
  }
}
