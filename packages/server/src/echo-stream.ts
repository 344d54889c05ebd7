/**
 * The echo model's completion as a stream, for `stream: true`: a first chunk with the role, one chunk
 * per word of the content (with `delayMs` between them, so that tests and the demo can watch tokens
 * arrive), a tool call's name and then its arguments in pieces, a last chunk with the finish reason,
 * and the usage chunk when `stream_options.include_usage` asks for it.
 */
import { forgetLastMatch, sleep } from '@nomyo/core/internal';
import type { ChatCompletion } from '@nomyo/core/protocol';

type Chunk = Record<string, unknown>;

/** Words with the whitespace after them, one at a time (a long answer makes no array of them): joined, they are the text again. */
function* words(text: string): Generator<string> {
  const word = /\s*\S+\s*/y;
  let at = 0;
  try {
    while (at < text.length && word.test(text)) {
      yield text.slice(at, word.lastIndex);
      at = word.lastIndex;
    }
    if (at < text.length) yield text.slice(at); // whitespace alone
  } finally {
    // Else the engine's last match keeps the answer, reachable after its stream ended (aborted too).
    forgetLastMatch();
  }
}

export async function* echoChunks(completion: ChatCompletion, options: { delayMs: number; includeUsage: boolean; signal: AbortSignal }): AsyncGenerator<Chunk> {
  const { id, created, model } = completion;
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): Chunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const pause = () => (options.delayMs > 0 ? sleep(options.delayMs, options.signal) : Promise.resolve());
  const choice = completion.choices[0]!;
  const { message } = choice;
  yield chunk({ role: message.role, content: '' });
  if (typeof message.content === 'string') {
    for (const word of words(message.content)) {
      await pause();
      yield chunk({ content: word });
    }
  }
  for (const [index, call] of (message.tool_calls ?? []).entries()) {
    if (call.type !== 'function') {
      yield chunk({ tool_calls: [{ ...call, index }] }); // a custom tool's input, whole (at its position)
      continue;
    }
    yield chunk({ tool_calls: [{ index, id: call.id, type: call.type, function: { name: call.function.name, arguments: '' } }] });
    for (const piece of words(call.function.arguments)) {
      await pause();
      yield chunk({ tool_calls: [{ index, function: { arguments: piece } }] });
    }
  }
  yield chunk({}, choice.finish_reason);
  if (options.includeUsage) yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage: completion.usage };
}
