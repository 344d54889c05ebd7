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
/** The fields every chunk repeats, as a streaming server's do. */
const ENVELOPE = new Set<string>(['id', 'object', 'created', 'model', 'system_fingerprint', 'service_tier']);
/** The completion's fields that go in no chunk's envelope (the stream has `_metadata` of its own). */
const NOT_ENVELOPE = new Set<string>(['choices', 'usage', '_metadata']);
/**
 * The most characters of one piece of text or of a tool call's arguments, even inside a word: the
 * chunks of a whole answer a router streams (its model silent too long: stream-commit.ts) are sealed
 * one a record, and a record's plaintext stays far below its 1 MiB (MAX_STREAM_RECORD_BYTES).
 */
const MAX_PIECE_CHARS = 64 * 1024;
/** Log probabilities of at most this many tokens in one chunk (each with its top_logprobs: a few KB). */
const LOGPROB_TOKENS = 64;
/** The message's fields that have deltas of their own; the others go whole, in one. */
const DELTA_FIELDS = new Set<string>(['role', 'content', 'refusal', 'tool_calls', ...REASONING_FIELDS]);

/** The chunk objects, in order, for `completion`. */
export function completionChunks(completion: ChatCompletion, options: ChunkOptions = {}): Chunk[] {
  return [...chunksOf(completion, options)];
}

/** {@link completionChunks} one at a time, made as they are taken: a long completion is never all chunks at once. */
export function* chunksOf(completion: ChatCompletion, options: ChunkOptions): Generator<Chunk> {
  const includeUsage = options.includeUsage === true;
  // The envelope as the completion had it, in its order (a field it left out stays out: completion.ts)
  // on every chunk; its other fields (a vendor's own: `prompt_filter_results`) once, on the first, as
  // Azure's streams have them: accumulators such as openai-node's assign them to the whole.
  const base: Chunk = {};
  let once: Chunk | undefined = {};
  for (const [field, value] of Object.entries(completion)) {
    if (field === 'object') base.object = 'chat.completion.chunk';
    else if (ENVELOPE.has(field)) base[field] = value;
    else if (!NOT_ENVELOPE.has(field) && value !== undefined) once[field] = value;
  }
  // Only the last chunk has `usage`, as a router's streamed chunks do: the protocol has `usage` an
  // object where present (OpenAI's own streams add `usage: null` to the others; SDKs read both alike).
  const chunk = (choices: unknown[]): Chunk => {
    const made = { ...base, ...once, choices };
    once = undefined;
    return made;
  };

  for (const choice of completion.choices) {
    for (const delta of choiceDeltas(choice)) {
      yield chunk([{ index: choice.index, delta, logprobs: null, finish_reason: null }]);
    }
    // The choice's log probabilities at its end (they cannot be split along the text's pieces), a
    // slice of tokens a chunk: accumulators append each chunk's to the choice's, so the whole comes out the same.
    const { index, message: _message, finish_reason, logprobs, ...other } = choice;
    const slices = logprobSlices(logprobs);
    for (const slice of slices.slice(0, -1)) yield chunk([{ index, delta: {}, logprobs: slice, finish_reason: null }]);
    yield chunk([{ ...other, index, delta: {}, logprobs: slices.at(-1), finish_reason: finish_reason ?? 'stop' }]);
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
  if (typeof message.refusal === 'string' && message.refusal !== '') for (const piece of pieces(message.refusal)) yield { refusal: piece };
  // Any other field of the message (annotations, a vendor's own), whole, in one delta: accumulators
  // such as openai-node's assign a delta's other fields to the message.
  const other = Object.entries(message).filter(([field, value]) => !DELTA_FIELDS.has(field) && value !== undefined && value !== null);
  if (other.length > 0) yield Object.fromEntries(other);
  const calls = message.tool_calls ?? [];
  for (const [index, call] of calls.entries()) {
    // Its position is its index, whatever the call says (the check does not look at an `index` there).
    if (call.type !== 'function') {
      yield { tool_calls: [{ ...call, index }] }; // a custom tool's call, whole
      continue;
    }
    // As OpenAI streams a call: the whole call at index i, its arguments in pieces when they are long
    // (accumulators join them).
    const [first = '', ...rest] = pieces(call.function.arguments, MAX_PIECE_CHARS);
    yield { tool_calls: [{ ...call, index, function: { ...call.function, arguments: first } }] };
    for (const piece of rest) yield { tool_calls: [{ index, function: { arguments: piece } }] };
  }
}

/** `at`, or one before it where it would split a surrogate pair; at most the text's length. */
function cutAt(text: string, at: number): number {
  if (at >= text.length) return text.length;
  const before = text.charCodeAt(at - 1);
  return before >= 0xd800 && before <= 0xdbff ? at - 1 : at;
}

/**
 * A choice's log probabilities in slices of LOGPROB_TOKENS tokens (OpenAI's `content` and `refusal`
 * token lists), the last one for the choice's last chunk, as openai-node's accumulator joins them back:
 * the first slice is the object with its other fields and the lists' first tokens; the rest carry
 * only a list's next tokens, which it appends. Anything else whole, in the last.
 */
function logprobSlices(logprobs: unknown): unknown[] {
  if (!isTokenLists(logprobs)) return [logprobs ?? null];
  const content = logprobs.content ?? [];
  const refusal = logprobs.refusal ?? [];
  if (content.length + refusal.length <= LOGPROB_TOKENS) return [logprobs];
  const first: Record<string, unknown> = { ...logprobs };
  if (Array.isArray(logprobs.content)) first.content = content.slice(0, LOGPROB_TOKENS);
  const refusalTaken = Math.max(0, LOGPROB_TOKENS - content.length);
  if (Array.isArray(logprobs.refusal)) first.refusal = refusal.slice(0, refusalTaken);
  const out: unknown[] = [first];
  for (let i = LOGPROB_TOKENS; i < content.length; i += LOGPROB_TOKENS) out.push({ content: content.slice(i, i + LOGPROB_TOKENS) });
  for (let i = refusalTaken; i < refusal.length; i += LOGPROB_TOKENS) out.push({ refusal: refusal.slice(i, i + LOGPROB_TOKENS) });
  return out;
}

/** An object whose `content` and `refusal`, where present, are token lists or null (other fields go on the first slice). */
function isTokenLists(value: unknown): value is { content?: unknown[] | null; refusal?: unknown[] | null } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { content, refusal } = value as { content?: unknown; refusal?: unknown };
  return (content == null || Array.isArray(content)) && (refusal == null || Array.isArray(refusal));
}

/**
 * Splits text after whitespace into pieces of at most `size` characters where it can (never inside
 * a surrogate pair): each piece ends after the last whitespace within `size`, or, when a word is
 * longer, after the first one past it, or inside the word at MAX_PIECE_CHARS. Pieces are slices of
 * `text`, made one at a time.
 */
export function* pieces(text: string, size = Math.max(PIECE_CHARS, Math.ceil(text.length / MAX_PIECES))): Generator<string> {
  // Greedy up to size - 1 characters, then backtracking to a whitespace: the last one in the window.
  const within = new RegExp(`[^]{0,${size - 1}}\\s`, 'y');
  // The end of a longer word, looked for no further than MAX_PIECE_CHARS (a word of 64 Mi characters
  // is cut in 1,024 pieces, not scanned to its end 1,024 times).
  const wordEnd = new RegExp(`\\S{0,${Math.max(0, MAX_PIECE_CHARS - size - 1)}}\\s`, 'y');
  for (let start = 0; start < text.length; ) {
    let end = text.length;
    if (text.length - start > size) {
      within.lastIndex = start;
      wordEnd.lastIndex = start + size;
      if (within.test(text)) end = within.lastIndex;
      else end = size < MAX_PIECE_CHARS && wordEnd.test(text) ? wordEnd.lastIndex : cutAt(text, start + MAX_PIECE_CHARS);
    }
    if (end - start > MAX_PIECE_CHARS) end = cutAt(text, start + MAX_PIECE_CHARS);
    yield text.slice(start, end);
    start = end;
  }
}
