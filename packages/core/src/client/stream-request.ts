/**
 * One streamed request's attempt: v2 to a router that streams gives a stream of sealed records
 * (stream-answer.ts); a router (or upstream) that answers whole, and every v1 router (v1 never
 * streams: the request goes without `stream`), give the whole answer made into chunks.
 */
import { PACKAGE_ALGORITHM, V2_ANSWER_ALGORITHM, V2_STREAM_ALGORITHM, type ProtocolVersion } from '../protocol/constants.js';
import type { ChatCompletionChunk } from '../protocol/stream/chunk.js';
import { StreamOpener } from '../protocol/stream/open-stream.js';
import type { OpenedBody } from '../protocol/body/open.js';
import type { ChatCompletion } from '../protocol/completion.js';
import { aborted } from '../transport/abort.js';
import { ChatCompletionStream } from './chat-stream.js';
import { protect, type Call, type RequestContext } from './request-flow.js';
import { roundTrip, type Wire } from './round-trip.js';
import { chunksOf } from './completion-chunks.js';
import { unwatchStream } from './dropped-streams.js';
import { StreamAnswer } from './stream-answer.js';

export interface StreamContext extends RequestContext {
  readonly wire: Wire;
  readonly streamIdleTimeout: number;
  /** The opened whole answer as a checked completion (its plaintext released). */
  completion(opened: OpenedBody<object>, payloadId: string, protocol: ProtocolVersion): Promise<ChatCompletion>;
}

/**
 * One attempt of `call` (its payload asks to stream): resolves once the answer has started (a
 * streamed answer's header event has come, or a whole answer was opened), to its stream. `done` runs
 * when the stream ends, however it ends.
 */
export async function streamAttempt(ctx: StreamContext, call: Call, controller: AbortController, done: () => void): Promise<ChatCompletionStream> {
  const protection = await protect(ctx, call);
  const { payloadId } = call;
  const exchange = { timeout: call.timeout, signal: call.signal };
  const includeUsage = (call.payload as { stream_options?: { include_usage?: unknown } }).stream_options?.include_usage === true;
  const whole = async (opened: OpenedBody<object>, protocol: ProtocolVersion) => {
    const chunks = chunksOf(await ctx.completion(opened, payloadId, protocol), { includeUsage }) as unknown as Generator<ChatCompletionChunk>;
    const algorithm = protocol === 2 ? V2_ANSWER_ALGORITHM : PACKAGE_ALGORITHM;
    return new ChatCompletionStream(ending(each(chunks, call.signal), done, controller), controller, { payload_id: payloadId, protocol, streamed: false, encryption_algorithm: algorithm });
  };
  if (protection.version === 1) {
    const { stream: _stream, stream_options: _options, ...payload } = call.payload as Record<string, unknown>;
    const { opened } = await roundTrip(ctx.wire, protection, call.plaintext(payload), call.headers(), exchange, call.secure);
    return whole(opened!, 1);
  }
  const result = await roundTrip(ctx.wire, protection, call.plaintext(), call.headers(), { ...exchange, streams: true }, call.secure);
  if (result.opened) return whole(result.opened, 2);
  const answer = new StreamAnswer(result.stream, new StreamOpener(protection.kdfKey!, payloadId, call.secure), ctx.streamIdleTimeout);
  await answer.start();
  return new ChatCompletionStream(ending(answer.chunks(), done, controller), controller, { payload_id: payloadId, protocol: 2, streamed: true, encryption_algorithm: V2_STREAM_ALGORITHM });
}

/**
 * What ends a streamed call, once, however it ends: the end of its iteration, its abort (a stream
 * aborted before it is iterated never reaches that end), or a failure before it started. The call's
 * link to the caller's signal goes, and the next request's keys are made ahead (`refill`).
 */
export function streamEnd(call: Call, refill: () => void): () => void {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    call.signal?.removeEventListener('abort', end);
    call.release();
    refill();
  };
  call.signal?.addEventListener('abort', end, { once: true });
  return end;
}

/**
 * A whole answer's chunks, one at a time: after an abort (the stream's controller, the caller's
 * signal) none more, as for a streamed answer.
 */
async function* each<T>(items: Iterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  for (const item of items) {
    if (signal?.aborted) throw aborted(signal);
    yield item;
  }
  // Aborted after the last chunk: the abort is what the caller meets, as for a streamed answer.
  if (signal?.aborted) throw aborted(signal);
}

/**
 * `chunks`, then `done`, however the iteration ends (to its end, an error, a `break`); ended before
 * its end, `controller` is aborted too, as openai-node's stream aborts its own.
 */
async function* ending<T>(chunks: AsyncGenerator<T>, done: () => void, controller: AbortController): AsyncGenerator<T> {
  let finished = false;
  try {
    yield* chunks;
    finished = true;
  } finally {
    unwatchStream(controller);
    if (!finished) controller.abort();
    done();
  }
}
