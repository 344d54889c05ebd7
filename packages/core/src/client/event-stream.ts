/**
 * A stream's chunks as the body an OpenAI-compatible SDK reads: `data: {chunk}` events, each made
 * when the SDK reads it (as its record is opened), then `data: [DONE]`. An error the router sealed
 * into the stream's final record arrives the way api.openai.com sends one mid-stream, as a
 * `data: {"error": …}` event, so the SDK raises its own APIError; anything else (a forged or cut-short
 * stream, a timeout, an abort) errors the body, as a failing network would, with our error.
 */
import { APIError } from '../errors.js';

const encoder = new TextEncoder();
const DONE = encoder.encode('data: [DONE]\n\n');

export interface EventStreamOptions {
  /** The `{"error": …}` body of an APIError that ended the stream. */
  errorBody(err: APIError): unknown;
  /** What the body errors with instead of `err` (an abort becomes the AbortError SDKs recognise). */
  bodyError(err: unknown): unknown;
  /** The reader stopped early: close the connection. */
  cancel(): void;
}

export function chunksToEventStream(chunks: AsyncIterator<unknown>, options: EventStreamOptions): ReadableStream<Uint8Array> {
  let ended = false;
  // Pull-based: the next record is read and opened only when the SDK asks for the next event.
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (ended) return;
        try {
          const next = await chunks.next();
          if (!next.done) return controller.enqueue(encoder.encode(`data: ${JSON.stringify(next.value)}\n\n`));
          ended = true;
          controller.enqueue(DONE);
          controller.close();
        } catch (err) {
          ended = true;
          if (!(err instanceof APIError)) return controller.error(options.bodyError(err));
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(options.errorBody(err))}\n\n`));
          controller.close();
        }
      },
      async cancel() {
        ended = true;
        options.cancel();
        await chunks.return?.(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Waits for a stream's first chunk. An APIError before it (an error the router sealed into the
 * stream's end before any chunk: an upstream's refusal once the router had committed to the stream
 * after 15 s of its silence) is returned, to be answered as an error Response with its status, which
 * an SDK raises as its own class and retries by `x-should-retry`; as a `data: {"error": …}` event it
 * has no status. Anything else, and the chunks, stay the iterator's, the first one replayed.
 */
export async function firstChunk(chunks: AsyncIterator<unknown>): Promise<APIError | AsyncIterator<unknown>> {
  let first: Promise<IteratorResult<unknown>>;
  try {
    first = Promise.resolve(await chunks.next());
  } catch (err) {
    if (err instanceof APIError) return err;
    first = Promise.reject(err);
    first.catch(() => {}); // read by the body's first pull, or never (the Response dropped unread)
  }
  let replayed = false;
  return {
    next: () => (replayed ? chunks.next() : ((replayed = true), first)),
    return: async (value?: unknown) => (await chunks.return?.(value)) ?? { done: true, value },
  };
}
