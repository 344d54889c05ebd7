/**
 * The schema check on a decrypted answer: only a chat.completion is ever returned to a caller.
 *
 * The exported types are inferred from the same schema the check runs (./schema.ts), so they cannot
 * drift apart. Required are the load-bearing fields, those a caller dereferences: `choices`, each
 * choice's `message` with its `role`, `content` and `tool_calls`, and `finish_reason`. The envelope
 * (`id`, `created`, `model`) says where an answer came from, not what it says, and servers differ in
 * it (docs/protocol.md, "What the client checks"): checked when present, optional when not. `object`
 * is filled in as "chat.completion" and a choice's `index` as its position when left out, which is
 * what they are. Other fields are allowed, typed `unknown`, and never looked at.
 */
import { SecurityError } from '../errors.js';
import { absentAs, absentFrom, array, byType, formatPath, indexOrPosition, literal, nullable, num, object, optional, optionalNullDropped, str, unknownValue, type Infer } from './schema.js';

// The /** */ comments on the fields are the API reference's: the exported types are inferred from these objects.
const functionToolCall = object({
  /** The tool call's id, which the `tool` message answering it names. */
  id: str(),
  /** `function`. */
  type: literal('function'),
  /** The function to call. */
  function: object({
    /** The function's name. */
    name: str(),
    /** Its arguments, as the model wrote them: JSON text, not yet parsed or checked. */
    arguments: str(),
  }),
});

// OpenAI's custom tools (free-form input, no JSON schema), as openai@6 types them.
const customToolCall = object({
  /** The tool call's id, which the `tool` message answering it names. */
  id: str(),
  /** `custom`. */
  type: literal('custom'),
  /** The custom tool to call. */
  custom: object({
    /** The tool's name. */
    name: str(),
    /** Its input, as the model wrote it. */
    input: str(),
  }),
});

const toolCall = byType({ function: functionToolCall, custom: customToolCall });

const message = object({
  // What every OpenAI-compatible server answers with; typed so, the message goes back into the next
  // request's `messages` as openai's own does (an agent's loop), no cast.
  /** `assistant`. */
  role: literal('assistant'),
  // OpenAI sends `content: null` beside tool calls; some servers leave it out there, or in a message
  // of reasoning only. The check fills in null, so `content` is always there.
  /** The text of the answer; null beside tool calls (filled in as null when a server left it out). */
  content: absentAs(nullable(str()), null),
  // null: some servers (Mistral's API among them) send it for "no tool calls": removed, as none.
  /** The tools the model wants called, when it calls any. */
  tool_calls: optionalNullDropped(array(toolCall)),
  /** A refusal message, from models that give one. */
  refusal: optional(nullable(str())),
});

const choice = object({
  /** Which choice this is: 0 unless `n` asked for more (its position when the server left it out). */
  index: indexOrPosition(),
  /** The assistant's message. */
  message,
  /** Why the answer ended: `stop`, `length`, `tool_calls`, `content_filter`, … */
  finish_reason: nullable(str()),
  /** Log probabilities, when asked for; not checked. */
  logprobs: optional(unknownValue()),
});

const tokenSum = (u: Record<string, unknown>): number => (u.prompt_tokens as number) + (u.completion_tokens as number);

const usage = object({
  /** Tokens of the prompt. */
  prompt_tokens: num(),
  /** Tokens of the answer. */
  completion_tokens: num(),
  // Some servers leave the sum out: it is filled in, as what it is (when it is a finite number).
  /** Their sum (filled in when a server left it out). */
  total_tokens: absentFrom(num(), tokenSum, (u) => Number.isFinite(tokenSum(u))),
});

const completion = object({
  /** The completion's id, when the server sent one. */
  id: optional(str()),
  // A string, not the literal "chat.completion": the shape is what the check is for, and a literal
  // type would break callers that build completions (mocks, tests) from plain object literals.
  /** `chat.completion` (filled in when left out). */
  object: absentAs(str(), 'chat.completion'),
  /** Unix time in seconds, when the server sent it. */
  created: optional(num()),
  /** The model that answered, when the server said. */
  model: optional(str()),
  /** The answers: one unless `n` asked for more. */
  choices: array(choice, { minItems: 1 }),
  // `null` from some servers: it says nothing, and is removed, as a missing `usage`.
  /** Token counts, when the server sent them. */
  usage: optionalNullDropped(usage),
  /** The backend configuration that answered, from servers that say. */
  system_fingerprint: optional(nullable(str())),
  /** The service tier that answered, from servers that say. */
  service_tier: optional(nullable(str())),
});

/** The assistant's message: `role` and `content` always; `content` is null beside tool calls. */
export interface ChatCompletionMessage extends Infer<typeof message> {}

/** A function's tool call: `type: 'function'`, its `function`'s name and arguments (JSON text). */
export interface ChatCompletionMessageFunctionToolCall extends Infer<typeof functionToolCall> {}

/** A custom tool's call (OpenAI's free-form tools): `type: 'custom'`, its `custom` tool's name and input. */
export interface ChatCompletionMessageCustomToolCall extends Infer<typeof customToolCall> {}

/** A tool call in a message, as openai@6 types it: narrow by `type`. */
export type ChatCompletionMessageToolCall = ChatCompletionMessageFunctionToolCall | ChatCompletionMessageCustomToolCall;

/** One choice: an integer `index` (its position when the server left it out), the message, and `finish_reason` (a string or null). */
export interface ChatCompletionChoice extends Infer<typeof choice> {}

/** Token counts, when the router sends them: all three numbers. */
export interface CompletionUsage extends Infer<typeof usage> {}

/** What the client attaches after decrypting (docs/protocol.md, "Metadata the client adds"). */
export interface SecureMetadata {
  /** The `X-Payload-ID` the request was sent with. */
  payload_id: string;
  /** The package's `processed_at` (Unix seconds) when it is a number; not authenticated. */
  processed_at: number | undefined;
  /** Always true: the answer came sealed and was opened by this client. */
  is_encrypted: true;
  /** `hybrid-aes256-rsa4096` (v1), or `aes256gcm-hkdf-sha256` for a v2 answer. */
  encryption_algorithm: string;
  /** The wire protocol version that protected this request and its answer (docs/protocol.md). */
  protocol: 1 | 2;
}

/**
 * A checked chat.completion. Always there: `object` (OpenAI's is "chat.completion"; filled in when
 * left out) and a non-empty `choices`. Checked when present: `id`, `created`, `model` (the envelope,
 * which some servers leave out: docs/protocol.md), `usage`, `system_fingerprint`, `service_tier`.
 */
export interface ChatCompletion extends Infer<typeof completion> {}

/** What every refusal of an answer's shape says first; the rest names a schema path, never a value. */
export const NOT_A_COMPLETION = 'the decrypted answer is not a chat.completion';

/**
 * Returns `value` as a {@link ChatCompletion} if it is one, else throws SecurityError. Fills in
 * `content: null` where a message left it out, `object`, each choice's `index` and usage's
 * `total_tokens`, and removes a `usage: null`. Refuses `__proto__`, `constructor` and
 * `prototype` keys on every object it checks. Looks only at the fields above: its work is linear in
 * the number of choices and tool calls, whatever else the value holds. It does not limit nesting in
 * unchecked fields; the client's parse path does (MAX_ANSWER_DEPTH).
 */
export function checkChatCompletion(value: unknown): ChatCompletion {
  const mismatch = completion.check(value);
  if (mismatch) throw new SecurityError(`${NOT_A_COMPLETION}: ${formatPath(mismatch.path) || 'the answer'} must be ${mismatch.expected}`);
  return value as ChatCompletion;
}
