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

export interface ChatMessageParam {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | (string & {});
  content?: string | null | Array<Record<string, unknown>>;
  [key: string]: unknown;
}

/** OpenAI's chat-completions params, plus `security_tier` (sent only as the X-Security-Tier header). */
export interface ChatCompletionCreateParams {
  model: string;
  messages: ChatMessageParam[];
  security_tier?: SecurityTier;
  /** `true`: the answer as a stream of chunks, as the model makes them (see {@link ChatCompletionStream}). */
  stream?: boolean | null;
  /** With `stream`: `{ include_usage: true }` adds a last chunk with the usage and no choices. */
  stream_options?: { include_usage?: boolean | null } | null;
  temperature?: number | null;
  max_tokens?: number | null;
  tools?: Array<Record<string, unknown>>;
  tool_choice?: unknown;
  [key: string]: unknown;
}

/** {@link ChatCompletionCreateParams} asking for a stream. */
export interface ChatCompletionCreateParamsStreaming extends ChatCompletionCreateParams {
  stream: true;
}

/** {@link ChatCompletionCreateParams} asking for the whole completion. */
export interface ChatCompletionCreateParamsNonStreaming extends ChatCompletionCreateParams {
  stream?: false | null;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Milliseconds for this call, overriding the client's. */
  timeout?: number;
  /** An API key for this call, overriding the client's. */
  apiKey?: string;
}
const REQUEST_OPTION_KEYS = optionKeys<RequestOptions>()(['signal', 'timeout', 'apiKey']);

export interface SecureChatCompletionOptions extends Omit<SecureCompletionClientOptions, 'routerUrl'> {
  /** The router's origin. Default: `NOMYO_SERVER_URL`, else https://api.nomyo.ai:12434. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer`. Default: `NOMYO_API_KEY`. */
  apiKey?: string;
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

  readonly chat: { completions: { create: SecureChatCompletion['create'] } } = {
    completions: {
      create: ((params: ChatCompletionCreateParams, options?: RequestOptions) => this.create(params as ChatCompletionCreateParamsStreaming, options)) as SecureChatCompletion['create'],
    },
  };

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
  create(params: ChatCompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChatCompletionStream>;
  create(params: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<SecureChatCompletionResult>;
  create(params: ChatCompletionCreateParams, options?: RequestOptions): Promise<SecureChatCompletionResult | ChatCompletionStream>;
  async create(params: ChatCompletionCreateParams, options: RequestOptions = {}): Promise<SecureChatCompletionResult | ChatCompletionStream> {
    if (typeof params !== 'object' || params === null) throw new InvalidArgumentError('params must be an object');
    refuseUnknownOptions(options, REQUEST_OPTION_KEYS, 'create options');
    const { security_tier, stream, ...payload } = params;
    const send = { apiKey: options.apiKey ?? this.#apiKey, securityTier: security_tier, signal: options.signal, timeout: options.timeout };
    if (stream === true) return this.client.streamSecureRequest(payload, randomUUID(), send);
    const { stream_options: _options, ...whole } = payload;
    return this.client.sendSecureRequest(whole, randomUUID(), send);
  }

  dispose(): Promise<void> {
    return this.client.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
