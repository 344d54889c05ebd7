/** The OpenAI-shaped client: `create(params)` and `chat.completions.create(params)`. */
import { randomUUID } from '../crypto/subtle.js';
import type { ChatCompletionStream } from './chat-stream.js';
import type { SecurityTier } from '../protocol/constants.js';
import { InvalidArgumentError } from '../errors.js';
import { checkApiKeyFormat } from '../transport/policy.js';
import { CLIENT_OPTION_KEYS, env } from './options.js';
import { optionKeys, refuseUnknownOptions } from './option-keys.js';
import {
  SecureCompletionClient,
  type SecureChatCompletionResult,
  type SecureCompletionClientOptions,
} from './secure-completion-client.js';

/**
 * What `create()` needs of a message: a role, and content as text or parts. Any message type with
 * these is taken as it is: {@link ChatMessageParam}, openai's own `ChatCompletionMessageParam`, an
 * interface of yours (an interface has no index signature, so {@link ChatMessageParam} would refuse it).
 */
export interface ChatMessageLike {
  /** Who said it: `system`, `developer`, `user`, `assistant` or `tool` (other roles pass through). */
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | (string & {});
  /** The text, or OpenAI's content parts; null or absent beside an assistant's tool calls. */
  content?: string | null | ReadonlyArray<object> | undefined;
}

/** One message of the conversation, as OpenAI's chat API takes it; other fields pass through unchanged. */
export interface ChatMessageParam extends ChatMessageLike {
  /** The text, or OpenAI's content parts; null or absent beside an assistant's tool calls. */
  content?: string | null | Array<Record<string, unknown>> | undefined;
  [key: string]: unknown;
}

/**
 * What `create()` needs of its params, the checked fields' types included; any params type with
 * these is taken as it is, its other fields passed to the model: {@link ChatCompletionCreateParams},
 * openai's own `ChatCompletionCreateParams…`, an interface of yours.
 */
export interface ChatCompletionCreateParamsLike {
  /** The model the router should ask, e.g. `Qwen/Qwen3-0.6B`. */
  model: string;
  /** The conversation so far. */
  messages: ReadonlyArray<ChatMessageLike>;
  /** `standard`, `high` or `maximum`: sent as the `X-Security-Tier` header (bound into the seal in v2), never in the payload. */
  security_tier?: SecurityTier | undefined;
  /** `true`: the answer as a stream of chunks, as the model makes them (see {@link ChatCompletionStream}). */
  stream?: boolean | null | undefined;
  /** With `stream`: `{ include_usage: true }` adds a last chunk with the usage and no choices. */
  stream_options?: {
    /** Adds a last chunk with the usage and no choices. */
    include_usage?: boolean | null | undefined;
  } | null | undefined;
  /** Sampling temperature, passed to the model as given. */
  temperature?: number | null | undefined;
  /** The most tokens the answer may have, passed to the model as given. */
  max_tokens?: number | null | undefined;
  /** OpenAI's tool (function) definitions, passed to the model as given. */
  tools?: ReadonlyArray<object> | undefined;
  /** OpenAI's `tool_choice`, passed to the model as given. */
  tool_choice?: unknown;
}

/** {@link ChatCompletionCreateParamsLike} asking for a stream: `create()` resolves to a {@link ChatCompletionStream}. */
export interface ChatCompletionCreateParamsStreamingLike extends ChatCompletionCreateParamsLike {
  /** Asks for a stream. */
  stream: true;
}

/** {@link ChatCompletionCreateParamsLike} asking for the whole completion (the default). */
export interface ChatCompletionCreateParamsNonStreamingLike extends ChatCompletionCreateParamsLike {
  /** Asks for the whole completion. */
  stream?: false | null | undefined;
}

/**
 * OpenAI's chat-completions params, plus `security_tier` (sent only as the X-Security-Tier header),
 * as a type to annotate them with: mutable arrays, and any other field, passed to the model as given.
 */
export interface ChatCompletionCreateParams extends ChatCompletionCreateParamsLike {
  /** The conversation so far. */
  messages: ChatMessageParam[];
  /** OpenAI's tool (function) definitions, passed to the model as given. */
  tools?: Array<Record<string, unknown>> | undefined;
  [key: string]: unknown;
}

/** {@link ChatCompletionCreateParams} asking for a stream. */
export interface ChatCompletionCreateParamsStreaming extends ChatCompletionCreateParams {
  stream: true;
}

/** {@link ChatCompletionCreateParams} asking for the whole completion. */
export interface ChatCompletionCreateParamsNonStreaming extends ChatCompletionCreateParams {
  stream?: false | null | undefined;
}

/** Options of one `create` call, overriding the client's. */
export interface RequestOptions {
  /** Aborts the call (and a stream) with APIUserAbortError. */
  signal?: AbortSignal | undefined;
  /** Milliseconds for this call, overriding the client's. */
  timeout?: number | undefined;
  /** An API key for this call, overriding the client's. */
  apiKey?: string | undefined;
}
const REQUEST_OPTION_KEYS = optionKeys<RequestOptions>()(['signal', 'timeout', 'apiKey']);

/** The options of {@link SecureChatCompletion}: the low-level client's, with `baseUrl` for `routerUrl` and a default `apiKey`. */
export interface SecureChatCompletionOptions extends Omit<SecureCompletionClientOptions, 'routerUrl'> {
  /** The router's origin. Default: `NOMYO_SERVER_URL`, else https://api.nomyo.ai:12434. */
  baseUrl?: string | undefined;
  /** Sent as `Authorization: Bearer`. Default: `NOMYO_API_KEY`. */
  apiKey?: string | undefined;
}
const CHAT_OPTION_KEYS = optionKeys<SecureChatCompletionOptions>()([...CLIENT_OPTION_KEYS.filter(notRouterUrl), 'baseUrl', 'apiKey']);
/** The router is `baseUrl` here, as in the OpenAI SDK (its `baseURL`); `routerUrl` is the low-level client's name. */
function notRouterUrl<K extends string>(key: K): key is Exclude<K, 'routerUrl'> {
  return key !== 'routerUrl';
}

/**
 * An OpenAI-compatible chat client whose prompts and answers are sealed end to end.
 *
 * @example
 * const client = new SecureChatCompletion({ baseUrl: 'https://router.example:12434', apiKey });
 * const completion = await client.chat.completions.create({
 *   model: 'Qwen/Qwen3-0.6B',
 *   messages: [{ role: 'user', content: 'Hello' }],
 *   security_tier: 'high',
 * });
 * console.log(completion.choices[0].message.content);
 */
export class SecureChatCompletion {
  /** The low-level client (keys, server key, memory protection). */
  readonly client: SecureCompletionClient;
  readonly #apiKey: string | undefined;

  /** `chat.completions.create`: {@link SecureChatCompletion.create}, where the OpenAI SDK has it. */
  readonly chat: {
    /** The chat completions resource. */
    completions: {
      /** The same as {@link SecureChatCompletion.create}. */
      create: SecureChatCompletion['create'];
    };
  } = {
    completions: {
      create: ((params: ChatCompletionCreateParamsLike, options?: RequestOptions) => this.create(params, options)) as SecureChatCompletion['create'],
    },
  };

  /** Checks every option (an unknown one is an InvalidArgumentError); makes no key and sends nothing yet. */
  constructor(options: SecureChatCompletionOptions = {}) {
    refuseUnknownOptions(options, CHAT_OPTION_KEYS, 'SecureChatCompletion options', { routerUrl: 'baseUrl' });
    const { baseUrl, apiKey, ...rest } = options;
    this.#apiKey = apiKey ?? env('NOMYO_API_KEY');
    checkApiKeyFormat(this.#apiKey);
    this.client = new SecureCompletionClient({ ...rest, ...(baseUrl !== undefined ? { routerUrl: baseUrl } : {}) });
  }

  /**
   * Sends a chat completion sealed end to end. With `stream: true` it resolves, once the answer has
   * started, to a {@link ChatCompletionStream} of its chunks; else to the whole completion.
   */
  // Generic over the params type, constrained by a shape without an index signature, so that a
  // params type with more fields (openai's own, an interface of yours) is taken as it is.
  create<P extends ChatCompletionCreateParamsStreamingLike>(params: P, options?: RequestOptions): Promise<ChatCompletionStream>;
  create<P extends ChatCompletionCreateParamsNonStreamingLike>(params: P, options?: RequestOptions): Promise<SecureChatCompletionResult>;
  create<P extends ChatCompletionCreateParamsLike>(params: P, options?: RequestOptions): Promise<SecureChatCompletionResult | ChatCompletionStream>;
  async create(params: ChatCompletionCreateParamsLike, options: RequestOptions = {}): Promise<SecureChatCompletionResult | ChatCompletionStream> {
    if (typeof params !== 'object' || params === null) throw new InvalidArgumentError('params must be an object');
    refuseUnknownOptions(options, REQUEST_OPTION_KEYS, 'create options');
    const { security_tier, stream, ...payload } = params;
    const send = { apiKey: options.apiKey ?? this.#apiKey, securityTier: security_tier, signal: options.signal, timeout: options.timeout };
    if (stream === true) return this.client.streamSecureRequest(payload, randomUUID(), send);
    const { stream_options: _options, ...whole } = payload;
    return this.client.sendSecureRequest(whole, randomUUID(), send);
  }

  /** Drops every key and stops key rotation; any later call is a DisposedError. */
  dispose(): Promise<void> {
    return this.client.dispose();
  }

  /** `await using client = new SecureChatCompletion(…)` disposes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
