/**
 * The check on every chunk of a streamed answer: only a `chat.completion.chunk` reaches a caller
 * (docs/protocol.md, "Record plaintexts and padding"). The exported type is inferred from the
 * schema the check runs, as completion.ts does for whole answers, with the same rule for the
 * envelope: `id`, `created` and `model` checked when present; `object` filled in when left out,
 * refused when it names something else; a choice's `index` its position when left out.
 */
import { SecurityError } from '../../errors.js';
import { absentAs, array, formatPath, indexOrPosition, literal, nullable, num, object, optional, str, uint, unknownValue, type Infer } from '../schema.js';

// The /** */ comments on the fields are the API reference's: the exported types are inferred from these objects.
const toolCallDelta = object({
  /** Which tool call of the message this piece belongs to. */
  index: uint(),
  /** The tool call's id, in its first piece. */
  id: optional(str()),
  /** `function`, in its first piece. */
  type: optional(str()),
  /** The function: its name, then its arguments, in pieces. */
  function: optional(
    object({
      /** The function's name, in the call's first piece. */
      name: optional(str()),
      /** The next piece of its JSON arguments. */
      arguments: optional(str()),
    }),
  ),
});

const delta = object({
  /** `assistant`, in the first chunk. */
  role: optional(str()),
  /** The next piece of the text. */
  content: optional(nullable(str())),
  /** Pieces of tool calls, joined by their `index`. */
  tool_calls: optional(array(toolCallDelta)),
  /** The next piece of a refusal. */
  refusal: optional(nullable(str())),
});

const choice = object({
  // Left out only by servers that stream one choice (n = 1): its position is then its index.
  /** Which choice this piece belongs to: 0 unless `n` asked for more. */
  index: indexOrPosition(),
  /** What this chunk adds to the choice's message. */
  delta,
  /** Why the choice ended (`stop`, `length`, `tool_calls`, …), in its last chunk; null or absent before. */
  finish_reason: optional(nullable(str())),
  /** Log probabilities, when asked for; not checked. */
  logprobs: optional(unknownValue()),
});

const chunk = object({
  /** The completion's id, the same in every chunk, when the server sent one. */
  id: optional(str()),
  /** `chat.completion.chunk` (filled in when left out). */
  object: absentAs(literal('chat.completion.chunk'), 'chat.completion.chunk'),
  /** Unix time in seconds, when the server sent it. */
  created: optional(num()),
  /** The model that answered, when the server said. */
  model: optional(str()),
  /** The choices' pieces; empty in the usage chunk. */
  choices: array(choice),
  // `null` on every chunk from some upstreams: it says nothing, so it passes.
  /** Token counts, in the last chunk when `include_usage` asked for them. */
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
