/**
 * The check on every chunk of a streamed answer: only a `chat.completion.chunk` reaches a caller
 * (docs/protocol.md, "Record plaintexts"). The exported type is inferred from the schema the check
 * runs, as completion.ts does for whole answers.
 */
import { SecurityError } from '../../errors.js';
import { array, formatPath, literal, nullable, num, object, optional, str, uint, unknownValue, type Infer } from '../schema.js';

const toolCallDelta = object({
  index: uint(),
  id: optional(str()),
  type: optional(str()),
  function: optional(object({ name: optional(str()), arguments: optional(str()) })),
});

const delta = object({
  role: optional(str()),
  content: optional(nullable(str())),
  tool_calls: optional(array(toolCallDelta)),
  refusal: optional(nullable(str())),
});

const choice = object({
  index: uint(),
  delta,
  finish_reason: optional(nullable(str())),
  logprobs: optional(unknownValue()),
});

const chunk = object({
  id: str(),
  object: literal('chat.completion.chunk'),
  created: num(),
  model: str(),
  // Empty in the usage chunk of `stream_options.include_usage`.
  choices: array(choice),
  // `null` on every chunk from some upstreams: it says nothing, so it passes.
  usage: optional(nullable(object({}))),
});

/** One choice's piece: its `index`, the `delta` (role, content, tool call pieces), `finish_reason` at its end. */
export interface ChatCompletionChunkChoice extends Infer<typeof choice> {}

/** One `chat.completion.chunk` of a streamed answer, checked. */
export interface ChatCompletionChunk extends Infer<typeof chunk> {}

/** What every refusal of a chunk's shape says first; the rest names a schema path, never a value. */
export const NOT_A_CHUNK = 'a streamed record is not a chat.completion.chunk';

/** Returns `value` as a {@link ChatCompletionChunk} if it is one, else throws SecurityError. */
export function checkChatCompletionChunk(value: unknown): ChatCompletionChunk {
  const mismatch = chunk.check(value);
  if (mismatch) throw new SecurityError(`${NOT_A_CHUNK}: ${formatPath(mismatch.path) || 'the chunk'} must be ${mismatch.expected}`);
  return value as ChatCompletionChunk;
}
