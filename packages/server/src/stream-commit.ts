/**
 * When a stream request's answer starts. The router waits for the model to start answering (for an
 * upstream, its response headers), so that an upstream's refusal keeps its HTTP status: a 429 its
 * Retry-After, a 503 the client's retry, an error `create()` rejects with. A model still silent after
 * the heartbeat interval (an upstream that queues the request, or holds its headers through a long
 * prefill) commits the request to a streamed answer there: the 200, the header event and heartbeats
 * go out, so that neither a proxy nor the client's `timeout` (which bounds the wait for the header)
 * gives up on a request that is only waiting, and a retry does not queue it once more. A refusal
 * after that travels in the final record, typed by its sealed status, and is not retried (a stream
 * never is once its header has come).
 */
import { checkChatCompletion, type ChatCompletion } from '@nomyo/core/protocol';
import { chunksOf } from '@nomyo/core/internal';
import { isAsyncIterable } from './envelope.js';
import { HttpError } from './http-error.js';
import type { ChatRequest } from './types.js';

/** Whether `answer` settles (either way) within `ms`. */
export function settlesWithin(answer: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const settled = () => {
      clearTimeout(timer);
      resolve(true);
    };
    answer.then(settled, settled);
  });
}

/**
 * The chunks of an answer that had not started when its stream was committed: the model's own, or,
 * from a model that answered whole, the completion made into chunks. Its refusal is the first
 * `next()`'s error, which the stream's final record carries.
 */
export function lateChunks(answer: Promise<unknown>, request: ChatRequest): AsyncIterable<unknown> {
  const includeUsage = (request.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  return {
    [Symbol.asyncIterator]() {
      const inner = answer.then((output): AsyncIterator<unknown> | Iterator<unknown> => (isAsyncIterable(output) ? output[Symbol.asyncIterator]() : chunksOf(wholeAnswer(output), { includeUsage })));
      // Its refusal reaches the writer through next(); one never asked for must not end the process.
      inner.catch(() => undefined);
      return {
        next: () => inner.then((iterator) => iterator.next()),
        // The model's own iterator is closed, as the stream's writer closes any (model-abort.ts).
        return: async (value?: unknown) => {
          const iterator = await inner.catch(() => undefined);
          return (await iterator?.return?.(value)) ?? { done: true, value };
        },
      };
    },
  };
}

function wholeAnswer(output: unknown): ChatCompletion {
  try {
    return checkChatCompletion(output);
  } catch {
    throw new HttpError(502, 'the model answered with no chat.completion');
  }
}
