/** The schema check on a decrypted answer: only a chat.completion is ever returned to a caller. */
import { SecurityError } from '../errors.js';

export interface ChatCompletionMessage {
  role: 'assistant' | string;
  content: string | null;
  tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
  refusal?: string | null;
  [key: string]: unknown;
}

export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  finish_reason: string | null;
  logprobs?: unknown;
  [key: string]: unknown;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [key: string]: unknown;
}

/** What the client attaches after decrypting (PROTOCOL.md, "Metadata the clients add"). */
export interface SecureMetadata {
  payload_id: string;
  processed_at: number | undefined;
  is_encrypted: true;
  encryption_algorithm: string;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion' | string;
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage?: CompletionUsage;
  system_fingerprint?: string | null;
  [key: string]: unknown;
}

/** Throws SecurityError unless `value` is an object with a `choices` array of entries carrying a `message`. */
export function checkChatCompletion(value: unknown): ChatCompletion {
  const ok =
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Array.isArray((value as { choices?: unknown }).choices) &&
    (value as { choices: unknown[] }).choices.every(
      (c) => typeof c === 'object' && c !== null && typeof (c as { message?: unknown }).message === 'object' && (c as { message: unknown }).message !== null,
    );
  if (!ok) throw new SecurityError('the decrypted answer is not a chat.completion');
  return value as ChatCompletion;
}
