/**
 * The built-in deterministic model, used when no upstream is configured. The same request with the
 * same payload id gives the same completion, apart from `created` (its `id`, and a tool call's, are
 * made from the payload id), so client tests can assert exact contents; with `stream: true`, the same
 * completion as a stream of chunks (echo-stream.ts):
 *
 * - the last message is a `tool` result: content `echo: <tool result>`, finish_reason `stop`;
 * - the request has `tools` and the last message is a user message starting with `call:`: a call of
 *   the first tool with arguments `{"input": "<rest, trimmed>"}`, content null, finish_reason `tool_calls`;
 * - otherwise: content `echo: <text of the last user message>`, finish_reason `stop`.
 *
 * Token counts are whitespace-separated words: prompt = all message texts, completion = the content
 * (or the tool-call arguments).
 */
import type { ChatCompletion } from '@nomyo/core/protocol';
import { echoChunks } from './echo-stream.js';
import type { ChatRequest, CompletionModel, ModelContext } from './types.js';

/** A last user message that starts with this, in a request with `tools`, makes the echo model call the first tool. */
export const TOOL_CALL_PREFIX = 'call:';
const ECHO_PREFIX = 'echo: ';
const ECHO_PREFIX_WORDS = 1;

interface Message {
  role?: unknown;
  content?: unknown;
}

/** The text of a message: string content, or the `text` parts of array content joined. */
export function messageText(message: unknown): string {
  const content = (message as Message | null)?.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      return p?.type === 'text' && typeof p.text === 'string' ? p.text : '';
    })
    .filter((t) => t !== '')
    .join(' ');
}

/** Whitespace exactly as /\s/ has it (ECMAScript WhiteSpace and LineTerminator). */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** The number of whitespace-separated words, counted in place (a 10 MiB prompt makes no word strings). */
export function countWords(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const space = isSpace(text.charCodeAt(i));
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}

function firstToolName(tools: unknown): string | undefined {
  if (!Array.isArray(tools)) return undefined;
  const name = (tools[0] as { function?: { name?: unknown } } | undefined)?.function?.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/**
 * The echo model: the completion below, or with `stream: true` its chunks, `delayMs` apart word by word.
 * @example
 * const server = await startServer({ model: echoModelWith({ delayMs: 50 }) }); // what --echo-delay 50 does
 */
export function echoModelWith(options: { delayMs: number }): CompletionModel {
  return (request, context) => {
    const completion = echoCompletion(request, context);
    if (request.stream !== true) return completion;
    const includeUsage = (request.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    return echoChunks(completion, { delayMs: options.delayMs, includeUsage, signal: context.signal });
  };
}

/** The echo model without delays: the completion, or its chunks for `stream: true`. */
export const echoModel: CompletionModel = echoModelWith({ delayMs: 0 });

/** The echo completion of `request` (whatever it says of streaming). */
export function echoCompletion(request: ChatRequest, context: Pick<ModelContext, 'payloadId'>): ChatCompletion {
  const messages = request.messages as Message[];
  const last = messages[messages.length - 1];
  const lastUser = [...messages].reverse().find((m) => m?.role === 'user');
  // Each message's words counted once: the echoed text is counted again in the completion otherwise.
  const words = new Map<unknown, number>(messages.map((m) => [m, countWords(messageText(m))]));
  const promptTokens = messages.reduce((sum, m) => sum + words.get(m)!, 0);
  const toolName = firstToolName(request.tools);

  let message: ChatCompletion['choices'][number]['message'];
  let finishReason: string;
  let completionText: string;
  let completionTokens: number;
  const userText = messageText(lastUser);
  if (last?.role === 'user' && toolName !== undefined && userText.startsWith(TOOL_CALL_PREFIX)) {
    completionText = JSON.stringify({ input: userText.slice(TOOL_CALL_PREFIX.length).trim() });
    message = {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: `call_echo_${context.payloadId}`, type: 'function', function: { name: toolName, arguments: completionText } }],
    };
    finishReason = 'tool_calls';
    completionTokens = countWords(completionText);
  } else {
    const echoed = last?.role === 'tool' ? last : lastUser;
    completionText = `${ECHO_PREFIX}${messageText(echoed)}`;
    message = { role: 'assistant', content: completionText };
    finishReason = 'stop';
    // The prefix ends in a space: its words never run into the echoed text's.
    completionTokens = ECHO_PREFIX_WORDS + (echoed === undefined ? 0 : words.get(echoed)!);
  }
  return {
    id: `chatcmpl-echo-${context.payloadId}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: [{ index: 0, message, finish_reason: finishReason, logprobs: null }],
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}
