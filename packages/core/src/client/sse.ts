/**
 * Replays a whole decrypted chat.completion as an OpenAI `chat.completion.chunk` SSE stream.
 *
 * The NOMYO protocol has no streaming (the router answers with one sealed completion), but SDK
 * users write `stream: true` code. Replaying the finished completion as chunks lets that code run
 * unchanged; it just gets every chunk at once, after the whole answer was decrypted and checked.
 */
import type { ChatCompletion, ChatCompletionChoice } from '../protocol/completion.js';

export interface ChunkOptions {
  /** `stream_options.include_usage`: add the usage chunk (choices: []) before `[DONE]`. */
  includeUsage?: boolean;
}

type Delta = Record<string, unknown>;
type Chunk = Record<string, unknown>;

const encoder = new TextEncoder();
// Small pieces so apps that render deltas as they come see more than one; whole words only.
const PIECE_CHARS = 24;
// Extra assistant fields some OpenAI-compatible servers add (vLLM, Qwen, DeepSeek) and streaming
// readers such as the AI SDK pick up from deltas.
const REASONING_FIELDS = ['reasoning_content', 'reasoning'] as const;

/** The chunk objects, in order, for `completion` (without the final `[DONE]`). */
export function completionChunks(completion: ChatCompletion, options: ChunkOptions = {}): Chunk[] {
  const includeUsage = options.includeUsage === true;
  const base: Chunk = {
    id: completion.id,
    object: 'chat.completion.chunk',
    created: completion.created,
    model: completion.model,
  };
  if (completion.system_fingerprint !== undefined) base.system_fingerprint = completion.system_fingerprint;
  if (completion.service_tier !== undefined) base.service_tier = completion.service_tier;
  // OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
  const chunk = (choices: unknown[]): Chunk => ({ ...base, choices, ...(includeUsage ? { usage: null } : {}) });

  const chunks: Chunk[] = [];
  for (const choice of completion.choices) {
    for (const delta of choiceDeltas(choice)) {
      chunks.push(chunk([{ index: choice.index ?? 0, delta, logprobs: null, finish_reason: null }]));
    }
    chunks.push(chunk([{ index: choice.index ?? 0, delta: {}, logprobs: null, finish_reason: choice.finish_reason ?? 'stop' }]));
  }
  if (includeUsage) chunks.push({ ...base, choices: [], usage: completion.usage ?? null });
  return chunks;
}

/** The SSE body: `data: <chunk JSON>\n\n` per chunk, then `data: [DONE]\n\n`, as UTF-8 bytes. */
export function completionToEventStream(completion: ChatCompletion, options: ChunkOptions = {}): ReadableStream<Uint8Array> {
  const events = completionChunks(completion, options).map((c) => `data: ${JSON.stringify(c)}\n\n`);
  events.push('data: [DONE]\n\n');
  let next = 0;
  // Pull-based, one event per read, so a reader that cancels early stops the replay.
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const event = events[next++];
      if (event === undefined) controller.close();
      else controller.enqueue(encoder.encode(event));
    },
    cancel() {
      next = events.length;
    },
  });
}

function choiceDeltas(choice: ChatCompletionChoice): Delta[] {
  const message = choice.message;
  const deltas: Delta[] = [{ role: message.role ?? 'assistant', content: '' }];
  for (const field of REASONING_FIELDS) {
    const text = message[field];
    if (typeof text === 'string' && text !== '') for (const piece of pieces(text)) deltas.push({ [field]: piece });
  }
  if (typeof message.content === 'string') {
    for (const piece of pieces(message.content)) deltas.push({ content: piece });
  }
  if (typeof message.refusal === 'string' && message.refusal !== '') deltas.push({ refusal: message.refusal });
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  calls.forEach((call, index) => {
    // One delta per call, carrying the whole call: what OpenAI's own accumulators expect at index i.
    deltas.push({
      tool_calls: [{ index, id: call.id, type: call.type ?? 'function', function: { name: call.function?.name, arguments: call.function?.arguments ?? '' } }],
    });
  });
  return deltas;
}

/** Splits text after whitespace into pieces of about PIECE_CHARS (never inside a word or a surrogate pair). */
function pieces(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const word of text.split(/(?<=\s)/)) {
    if (current !== '' && current.length + word.length > PIECE_CHARS) {
      out.push(current);
      current = '';
    }
    current += word;
  }
  if (current !== '') out.push(current);
  return out;
}
