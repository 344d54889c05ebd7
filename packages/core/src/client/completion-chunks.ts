/**
 * A whole decrypted chat.completion as OpenAI `chat.completion.chunk` objects: what a stream request
 * delivers when its answer came whole (a v1 router, which never streams, or a router or upstream
 * that does not). The caller's `stream: true` code runs unchanged; it gets the chunks together,
 * once the whole answer was decrypted and checked.
 */
import type { ChatCompletion, ChatCompletionChoice } from '../protocol/completion.js';

export interface ChunkOptions {
  /** `stream_options.include_usage`: add the usage chunk (choices: []) before `[DONE]`. */
  includeUsage?: boolean;
}

type Delta = Record<string, unknown>;
type Chunk = Record<string, unknown>;

// Small pieces so apps that render deltas as they come see more than one; whole words only.
const PIECE_CHARS = 24;
// At most about this many pieces per text: a long completion in 24-character pieces would be one event
// (some 200 bytes of JSON around each piece) and one UI update per few words, ten times its size in
// all. Past 24 Ki characters the pieces grow instead.
const MAX_PIECES = 1024;
// Extra assistant fields some OpenAI-compatible servers add (vLLM, Qwen, DeepSeek) and streaming
// readers such as the AI SDK pick up from deltas.
const REASONING_FIELDS = ['reasoning_content', 'reasoning'] as const;
/** The completion's fields that are not its chunks' envelope (the stream has `_metadata` of its own). */
const NOT_ENVELOPE = new Set<string>(['choices', 'usage', '_metadata']);
/** The message's fields that have deltas of their own; the others go whole, in one. */
const DELTA_FIELDS = new Set<string>(['role', 'content', 'refusal', 'tool_calls', ...REASONING_FIELDS]);

/** The chunk objects, in order, for `completion`. */
export function completionChunks(completion: ChatCompletion, options: ChunkOptions = {}): Chunk[] {
  return [...chunksOf(completion, options)];
}

/** {@link completionChunks} one at a time, made as they are taken: a long completion is never all chunks at once. */
export function* chunksOf(completion: ChatCompletion, options: ChunkOptions): Generator<Chunk> {
  const includeUsage = options.includeUsage === true;
  // Every field of the completion but its choices, usage and metadata, in its order (a field it left out
  // stays out: completion.ts), vendors' own (`prompt_filter_results`) too, as a streaming server
  // repeats them in its chunks; `object` says what each now is.
  const base: Chunk = {};
  for (const [field, value] of Object.entries(completion)) {
    if (field === 'object') base.object = 'chat.completion.chunk';
    else if (!NOT_ENVELOPE.has(field) && value !== undefined) base[field] = value;
  }
  // Only the last chunk has `usage`, as a router's streamed chunks do: the protocol has `usage` an
  // object where present (OpenAI's own streams add `usage: null` to the others; SDKs read both alike).
  const chunk = (choices: unknown[]): Chunk => ({ ...base, choices });

  for (const choice of completion.choices) {
    for (const delta of choiceDeltas(choice)) {
      yield chunk([{ index: choice.index, delta, logprobs: null, finish_reason: null }]);
    }
    // The choice's log probabilities, all of them, with its last chunk (they cannot be split along
    // the pieces): accumulators append each chunk's to the choice's, so the whole comes out the same.
    const { index, message: _message, finish_reason, logprobs, ...other } = choice;
    yield chunk([{ ...other, index, delta: {}, logprobs: logprobs ?? null, finish_reason: finish_reason ?? 'stop' }]);
  }
  if (includeUsage) yield { ...base, choices: [], ...(completion.usage ? { usage: completion.usage } : {}) };
}

function* choiceDeltas(choice: ChatCompletionChoice): Generator<Delta> {
  const message = choice.message;
  yield { role: message.role, content: '' };
  for (const field of REASONING_FIELDS) {
    const text = message[field];
    if (typeof text === 'string' && text !== '') for (const piece of pieces(text)) yield { [field]: piece };
  }
  if (typeof message.content === 'string') {
    for (const piece of pieces(message.content)) yield { content: piece };
  }
  if (typeof message.refusal === 'string' && message.refusal !== '') yield { refusal: message.refusal };
  // Any other field of the message (annotations, a vendor's own), whole, in one delta: accumulators
  // such as openai-node's assign a delta's other fields to the message.
  const other = Object.entries(message).filter(([field, value]) => !DELTA_FIELDS.has(field) && value !== undefined && value !== null);
  if (other.length > 0) yield Object.fromEntries(other);
  const calls = message.tool_calls ?? [];
  for (const [index, call] of calls.entries()) {
    // One delta per call, carrying the whole call (a function's or a custom tool's): what OpenAI's
    // own accumulators expect at index i.
    yield { tool_calls: [{ index, ...call }] };
  }
}

/**
 * Splits text after whitespace into pieces of at most `size` characters where it can (never inside
 * a word or a surrogate pair): each piece ends after the last whitespace within `size`, or, when a
 * word is longer, after the first one past it. Pieces are slices of `text`, made one at a time.
 */
export function* pieces(text: string, size = Math.max(PIECE_CHARS, Math.ceil(text.length / MAX_PIECES))): Generator<string> {
  // Greedy up to size - 1 characters, then backtracking to a whitespace: the last one in the window.
  const within = new RegExp(`[^]{0,${size - 1}}\\s`, 'y');
  const next = /\s/g;
  for (let start = 0; start < text.length; ) {
    let end = text.length;
    if (text.length - start > size) {
      within.lastIndex = start;
      if (within.test(text)) end = within.lastIndex;
      else {
        next.lastIndex = start + size;
        if (next.test(text)) end = next.lastIndex;
      }
    }
    yield text.slice(start, end);
    start = end;
  }
}
