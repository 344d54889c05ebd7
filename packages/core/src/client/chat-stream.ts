/**
 * The stream `create({ stream: true })` resolves to, shaped as openai-node's: an async iterable of
 * `chat.completion.chunk` objects, its `controller`, `toReadableStream()` (newline-delimited JSON,
 * what openai-node's `Stream.fromReadableStream` reads back) and `_metadata`.
 */
import type { ProtocolVersion } from '../protocol/constants.js';
import type { ChatCompletionChunk } from '../protocol/stream/chunk.js';
import { InvalidArgumentError } from '../errors.js';
import { watchStream } from './dropped-streams.js';

/** What protected a streamed answer. */
export interface StreamMetadata {
  /** The request's `X-Payload-ID`. */
  payload_id: string;
  /** The wire protocol that protected the request and its answer: 2 for a streamed answer. */
  protocol: ProtocolVersion;
  /**
   * True when the router streamed the answer as the model made it; false when it answered whole (a
   * v1 router, or a router or upstream that does not stream) and the client made the chunks.
   */
  streamed: boolean;
  /** `aes256gcm-hkdf-sha256-stream` for a streamed answer, else the whole answer's algorithm. */
  encryption_algorithm: string;
}

/**
 * The chunks of one answer, as they arrive. Iterate it once (`for await`); `break` (which aborts
 * `controller`, as openai-node's does) or `controller.abort()` closes the connection. A stream you
 * drop unread is aborted once the runtime collects it (when that is, is the garbage collector's
 * choice): abort one you will not read, to close its connection (and the router's request) at once.
 *
 * @example
 * const stream = await client.chat.completions.create({ model, messages, stream: true });
 * for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
 */
export class ChatCompletionStream implements AsyncIterable<ChatCompletionChunk> {
  #chunks: AsyncGenerator<ChatCompletionChunk> | undefined;

  /** Made by `create({ stream: true })`, which callers use instead. */
  constructor(
    chunks: AsyncGenerator<ChatCompletionChunk>,
    /** Aborting it ends the iteration with APIUserAbortError and closes the connection. */
    readonly controller: AbortController,
    /** What protected this answer, and whether the router streamed it. */
    readonly _metadata: StreamMetadata,
  ) {
    this.#chunks = chunks;
    watchStream(this, controller);
  }

  /**
   * The chunks, each checked, as their records arrive and open; a stream can be iterated once.
   * Stopped before its end (a `break`, an error), the connection is closed and `controller` aborted,
   * as openai-node's is.
   */
  [Symbol.asyncIterator](): AsyncGenerator<ChatCompletionChunk> {
    const chunks = this.#chunks;
    if (!chunks) throw new InvalidArgumentError('this stream was already iterated: a stream can be read once');
    this.#chunks = undefined;
    // From now on the caller may hold the iterator alone (a `for await` does).
    watchStream(chunks, this.controller);
    return chunks;
  }

  /**
   * The chunks as newline-delimited JSON, one chunk a line, made as they are read: hand it to a
   * browser, where openai-node's `Stream.fromReadableStream` reads it back. Cancelling it closes the
   * connection.
   */
  toReadableStream(): ReadableStream<Uint8Array> {
    const chunks = this[Symbol.asyncIterator]();
    const encoder = new TextEncoder();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await chunks.next();
          if (next.done) controller.close();
          else controller.enqueue(encoder.encode(`${JSON.stringify(next.value)}\n`));
        } catch (err) {
          controller.error(err);
        }
      },
      // The abort first: a read that waits for the network ends at once (a `return` would wait behind it).
      cancel: async () => {
        this.controller.abort();
        await chunks.return(undefined);
      },
    });
  }
}
