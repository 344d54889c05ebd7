/**
 * The schema check on a decrypted answer: only a chat.completion is ever returned to a caller.
 *
 * The exported types are inferred from the same schema the check runs (./schema.ts), so they cannot
 * drift apart. Required are the fields OpenAI always sends and every OpenAI-compatible server we know
 * of (vLLM, llama.cpp, Ollama, LiteLLM) sends too; optional fields are checked when present; other
 * fields are allowed, typed `unknown`, and never looked at.
 */
import { SecurityError } from '../errors.js';
import { absentAs, array, formatPath, literal, nullable, num, object, optional, str, uint, unknownValue, type Infer } from './schema.js';

const toolCall = object({
  id: str(),
  type: literal('function'),
  function: object({ name: str(), arguments: str() }),
});

const message = object({
  role: str(),
  // OpenAI sends `content: null` beside tool calls; some servers leave it out. Only then may it be
  // missing, and the check fills in null so `content` is always there.
  content: absentAs(nullable(str()), null, (m) => Array.isArray(m.tool_calls) && m.tool_calls.length > 0),
  // null: some servers (Mistral's API among them) send it for "no tool calls".
  tool_calls: optional(nullable(array(toolCall))),
  refusal: optional(nullable(str())),
});

const choice = object({
  index: uint(),
  message,
  finish_reason: nullable(str()),
  logprobs: optional(unknownValue()),
});

const usage = object({
  prompt_tokens: num(),
  completion_tokens: num(),
  total_tokens: num(),
});

const completion = object({
  id: str(),
  // A string, not the literal "chat.completion": the shape is what the check is for, and a literal
  // type would break callers that build completions (mocks, tests) from plain object literals.
  object: str(),
  created: num(),
  model: str(),
  choices: array(choice, { minItems: 1 }),
  usage: optional(usage),
  system_fingerprint: optional(nullable(str())),
  service_tier: optional(nullable(str())),
});

/** The assistant's message: `role` and `content` always; `content` is null beside tool calls. */
export interface ChatCompletionMessage extends Infer<typeof message> {}

/** One choice: an integer `index`, the message, and `finish_reason` (a string or null). */
export interface ChatCompletionChoice extends Infer<typeof choice> {}

/** Token counts, when the router sends them: all three numbers. */
export interface CompletionUsage extends Infer<typeof usage> {}

/** What the client attaches after decrypting (docs/protocol.md, "Metadata the client adds"). */
export interface SecureMetadata {
  payload_id: string;
  processed_at: number | undefined;
  is_encrypted: true;
  /** `hybrid-aes256-rsa4096` (v1), or `aes256gcm-hkdf-sha256` for a v2 answer. */
  encryption_algorithm: string;
  /** The wire protocol version that protected this request and its answer (docs/protocol.md). */
  protocol: 1 | 2;
}

/**
 * A checked chat.completion. Required: `id`, `object` (OpenAI's is "chat.completion"), `created`, `model`
 * and a non-empty `choices`; checked when present: `usage`, `system_fingerprint`, `service_tier`.
 */
export interface ChatCompletion extends Infer<typeof completion> {}

/** What every refusal of an answer's shape says first; the rest names a schema path, never a value. */
export const NOT_A_COMPLETION = 'the decrypted answer is not a chat.completion';

/**
 * Returns `value` as a {@link ChatCompletion} if it is one, else throws SecurityError. Fills in
 * `content: null` where a tool-call message left it out. Refuses `__proto__`, `constructor` and
 * `prototype` keys on every object it checks. Looks only at the fields above: its work is linear in
 * the number of choices and tool calls, whatever else the value holds. It does not limit nesting in
 * unchecked fields; the client's parse path does (MAX_ANSWER_DEPTH).
 */
export function checkChatCompletion(value: unknown): ChatCompletion {
  const mismatch = completion.check(value);
  if (mismatch) throw new SecurityError(`${NOT_A_COMPLETION}: ${formatPath(mismatch.path) || 'the answer'} must be ${mismatch.expected}`);
  return value as ChatCompletion;
}
