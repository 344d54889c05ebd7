/**
 * createSecureFetch: a `fetch` for OpenAI-compatible SDKs that seals chat completions with the
 * NOMYO protocol and responds the way api.openai.com would, so the SDK's parsing, error classes,
 * retries and streaming code all work unchanged.
 */
import { randomUUID } from '../crypto/subtle.js';
import { EVENT_STREAM_CONTENT_TYPE } from '../protocol/constants.js';
import { APIError, APIUserAbortError, InvalidArgumentError, SecurityError } from '../errors.js';
import type { SecurityTier } from '../protocol/constants.js';
import { jsonBytes } from '../protocol/json-stringify.js';
import { checkApiKeyFormat, checkSecurityTier } from '../transport/policy.js';
import { isRetryable, parseRetryAfter, retryDelayMs } from '../transport/retry.js';
import { readChatRequest, type ChatRequestParts, type FetchInput } from './fetch-request.js';
import { givenKeys, optionKeys, refuseUnknownOptions } from './option-keys.js';
import { CLIENT_OPTION_KEYS, env } from './options.js';
import { SecureCompletionClient, type SecureCompletionClientOptions } from './secure-completion-client.js';
import { chunksToEventStream, firstChunk } from './event-stream.js';

/** The options of {@link createSecureFetch}: a client's options (or a ready `client`), and defaults for what the SDK does not say. */
export interface SecureFetchOptions extends SecureCompletionClientOptions {
  /** The router's origin, as in `SecureChatCompletion`: another name for `routerUrl` (giving both, they must be equal). */
  baseUrl?: string | undefined;
  /**
   * Use this client instead of creating one (the options that would configure a client are then
   * refused): a `SecureCompletionClient`, which a `SecureChatCompletion` holds as its `client`.
   */
  client?: SecureCompletionClient | undefined;
  /** Sent when the SDK's request has no `Authorization: Bearer` header of its own. Default: `NOMYO_API_KEY`, as `SecureChatCompletion`'s. */
  apiKey?: string | undefined;
  /** Used when neither the body's `security_tier` nor an `X-Security-Tier` header names one. */
  securityTier?: SecurityTier | undefined;
}
const FETCH_OPTION_KEYS = optionKeys<SecureFetchOptions>()([...CLIENT_OPTION_KEYS, 'baseUrl', 'client', 'apiKey', 'securityTier']);
// What configures the client this creates: with `client` given, these would do nothing.
const CREATED_CLIENT_KEYS = [...CLIENT_OPTION_KEYS, 'baseUrl'];

/** A `fetch` that only sends sealed chat completions, with the client that seals them. */
export type SecureFetch = ((input: string | URL | Request, init?: RequestInit) => Promise<Response>) & {
  /** The client that seals the requests: its keys, router key and memory protection. */
  readonly client: SecureCompletionClient;
};

// The OpenAI SDK's own default: its timeout (which aborts our signal) should decide, not ours.
const SDK_DEFAULT_TIMEOUT_MS = 600_000;
// Router headers an SDK acts on: retry timing. (`x-request-id` is our payload id.) Not the router's
// `x-should-retry`: nothing authenticates it (a proxy could have a 400 resent, or a 503 not). The
// error's Response says one of its own instead, by core's rule (errorResponse).
const FORWARDED_ERROR_HEADERS = ['retry-after', 'retry-after-ms'];
/**
 * What protected an answer, on its Response (an SDK passes its chunks on without `_metadata`; a
 * caller reads these with openai's `.withResponse()`, or the AI SDK's `response.headers`).
 */
export const PROTECTION_HEADERS = {
  /** The wire protocol that protected the request and its answer: `1` or `2`. */
  protocol: 'x-nomyo-protocol',
  /** The answer's algorithm, as `_metadata.encryption_algorithm` says it. */
  encryptionAlgorithm: 'x-nomyo-encryption-algorithm',
  /** `true` when the router streamed the answer as the model made it; `false` for a whole answer (made into chunks for a stream). */
  streamed: 'x-nomyo-streamed',
} as const;

function protectionHeaders(metadata: { protocol: number; encryption_algorithm: string }, streamed: boolean): Record<string, string> {
  return {
    [PROTECTION_HEADERS.protocol]: String(metadata.protocol),
    [PROTECTION_HEADERS.encryptionAlgorithm]: metadata.encryption_algorithm,
    [PROTECTION_HEADERS.streamed]: String(streamed),
  };
}

/**
 * Creates a `fetch` to give an OpenAI-compatible SDK. `POST …/chat/completions` requests are
 * sealed end to end and sent to the NOMYO router; the answer comes back as the plain JSON (or, with
 * `stream: true`, the SSE stream) the SDK expects. Every other request is refused, never sent: a
 * 404 Response (a chat completion that cannot be sent as it is, its body or tier: a 400), with
 * `x-should-retry: false` and a message that says so, which the SDK raises at once as its own error.
 *
 * - The API key is the SDK's `Authorization: Bearer` header (so `new OpenAI({ apiKey })` works);
 *   a security tier comes from a `security_tier` body field or an `X-Security-Tier` header.
 * - Router errors become Responses with the router's status, an OpenAI-style `{"error": …}` body
 *   (a sealed error's `type` and `code` the model server's, as `context_length_exceeded`), its
 *   Retry-After (left out when 0 or gone by) and an `x-should-retry` by core's rule (429 and 503, a
 *   Retry-After up to a minute), so the SDK raises its own error classes and does its own retries
 *   where core would. This client retries nothing itself unless `maxRetries` is set (its default
 *   here is 0; set, it has retried already, and `x-should-retry` is false; connection failures and
 *   timeouts are thrown, which an SDK retries on its own: give it `maxRetries: 0` then). `timeout`'s
 *   default is the SDK's 600000 ms, for a stream the wait for its header event.
 * - Connection failures, timeouts and answers that fail decryption are thrown, as fetch does; the
 *   SDK reports them as connection errors with our error as `cause`. A user abort throws what fetch
 *   throws: the signal's reason (an `AbortError` unless the signal gave another, e.g. a `TimeoutError`).
 * - The decrypted completion keeps its `_metadata`; `x-request-id` is the X-Payload-ID sent, on
 *   every Response (an error's too), so that an SDK's `request_id` names the request in the router's logs.
 *   An answer's Response says what protected it (`PROTECTION_HEADERS`): `x-nomyo-protocol` (1 or 2),
 *   `x-nomyo-encryption-algorithm` and `x-nomyo-streamed` (true when the router streamed it as the
 *   model made it), for streams too, whose chunks carry no `_metadata`.
 * - With `stream: true` the body is a real `text/event-stream`: each `chat.completion.chunk` event
 *   is made as its sealed record arrives and opens; the Response comes with the first chunk. An error
 *   the router sealed into the stream's end comes as a `data: {"error": …}` event after chunks (the
 *   SDK raises its APIError), before any as an error Response with its status; a forged, cut-short or
 *   timed-out stream errors the body. A router that answers whole (v1, or one that does not stream)
 *   gives the whole answer's chunks together.
 *
 * @example
 * import OpenAI from 'openai';
 * import { createSecureFetch } from '@nomyo/core';
 *
 * const openai = new OpenAI({
 *   baseURL: 'https://api.nomyo.ai:12434/v1', // only the path matters: requests go to the baseUrl below
 *   apiKey: process.env.NOMYO_API_KEY,
 *   fetch: createSecureFetch({ baseUrl: 'https://api.nomyo.ai:12434' }),
 * });
 * const completion = await openai.chat.completions.create({
 *   model: 'Qwen/Qwen3-0.6B',
 *   messages: [{ role: 'user', content: 'Hello' }],
 * });
 * for await (const chunk of await openai.chat.completions.create({ model: 'Qwen/Qwen3-0.6B', messages, stream: true })) {
 *   process.stdout.write(chunk.choices[0]?.delta.content ?? '');
 * }
 */
export function createSecureFetch(options: SecureFetchOptions = {}): SecureFetch {
  refuseUnknownOptions(options, FETCH_OPTION_KEYS, 'createSecureFetch options');
  const { client: given, apiKey, securityTier: defaultTier, baseUrl, ...clientOptions } = options;
  const defaultKey = apiKey ?? env('NOMYO_API_KEY');
  checkApiKeyFormat(defaultKey);
  checkSecurityTier(defaultTier);
  const ignored = given === undefined ? [] : givenKeys(options, CREATED_CLIENT_KEYS);
  if (ignored.length > 0) {
    throw new InvalidArgumentError(`createSecureFetch options: with client given, ${ignored.join(', ')} would be ignored; set them on that client instead`);
  }
  const client =
    given ??
    new SecureCompletionClient({
      ...clientOptions,
      // `undefined` given is no value given: the SDK's defaults, not the client's.
      timeout: clientOptions.timeout ?? SDK_DEFAULT_TIMEOUT_MS,
      routerUrl: routerUrlOption(baseUrl, clientOptions.routerUrl),
      maxRetries: clientOptions.maxRetries ?? 0,
    });

  const secureFetch = async (input: FetchInput, init?: RequestInit): Promise<Response> => {
    let request: ChatRequestParts;
    let securityTier: SecurityTier | undefined;
    try {
      request = await readChatRequest(input, init);
      securityTier = checkSecurityTier(request.securityTier ?? defaultTier);
    } catch (err) {
      if (err instanceof SecurityError || err instanceof InvalidArgumentError) return refusalResponse(err);
      throw err;
    }
    if (request.signal?.aborted) throw abortReason(request.signal, undefined);
    const payloadId = randomUUID();
    const send = { apiKey: request.apiKey ?? defaultKey, securityTier, signal: request.signal };
    const headers = { 'x-request-id': payloadId };
    let completion;
    try {
      if (request.stream) {
        const stream = await client.streamSecureRequest(request.payload, payloadId, send);
        const chunks = await firstChunk(stream[Symbol.asyncIterator]());
        if (chunks instanceof APIError) throw chunks;
        const body = chunksToEventStream(chunks, {
          errorBody,
          bodyError: (err) => (err instanceof APIUserAbortError ? abortReason(request.signal, err) : err),
          cancel: () => stream.controller.abort(),
        });
        const protection = protectionHeaders(stream._metadata, stream._metadata.streamed);
        return new Response(body, { status: 200, headers: { ...headers, ...protection, 'content-type': EVENT_STREAM_CONTENT_TYPE, 'cache-control': 'no-cache' } });
      }
      completion = await client.sendSecureRequest(request.payload, payloadId, send);
    } catch (err) {
      if (err instanceof APIUserAbortError) throw abortReason(request.signal, err);
      if (err instanceof APIError) return errorResponse(err, payloadId, client.maxRetries === 0);
      if (err instanceof InvalidArgumentError) return refusalResponse(err);
      throw err;
    }
    // Its JSON written straight into bytes: no whole JSON string first.
    return new Response(jsonBytes(completion), { status: 200, headers: { ...headers, ...protectionHeaders(completion._metadata, false), 'content-type': 'application/json' } });
  };
  return Object.assign(secureFetch, { client });
}

/** `baseUrl` is `routerUrl` under SecureChatCompletion's name: either, or both when they agree. */
function routerUrlOption(baseUrl: string | undefined, routerUrl: string | undefined): string | undefined {
  if (baseUrl !== undefined && routerUrl !== undefined && baseUrl !== routerUrl) {
    throw new InvalidArgumentError('createSecureFetch options: baseUrl and routerUrl both name the router but differ; give one');
  }
  return baseUrl ?? routerUrl;
}

/**
 * The router's error as api.openai.com would shape it (`detail` is already sanitized by core): a
 * sealed error keeps the model server's type, code and param (`context_length_exceeded`,
 * `messages`), so the SDK's `err.type`, `err.code` and `err.param` are the ones it would have
 * given; otherwise the type comes from the status, the code is core's (`ERR_NOMYO_…`, which says
 * the router's words, not the model server's), and param is null.
 */
function errorBody(err: APIError, message = err.detail ?? `the router answered ${err.status}`): unknown {
  const type = err.error?.type || errorType(err.status);
  // A sealed error's code is the model server's, null included (api.openai.com's own `code: null`).
  return { error: { message, type, param: err.error?.param ?? null, code: err.error ? err.error.code : err.code }, detail: err.detail ?? null };
}

/**
 * The error as a Response. A status that is no error (a router's 201, 204 or 600: never a sealed
 * answer) becomes 502: as itself an SDK would take the error body for the completion, or the Response
 * constructor would throw.
 */
function errorResponse(err: APIError, payloadId: string, sdkRetries: boolean): Response {
  const isError = err.status >= 400 && err.status <= 599;
  const body = isError ? errorBody(err) : errorBody(err, `the router answered ${err.status}, which is neither an answer nor an error`);
  // Retried as core's own client retries (transport/retry.ts), not by the SDK's rule (every 5xx): no
  // 502 or 504, after which the model may have run, nor a Retry-After over a minute; and not again
  // by the SDK when this client's own retries (`maxRetries`) have run already.
  const retried = sdkRetries && isRetryable(err) && retryDelayMs(1, err) !== undefined;
  const headers = new Headers({ 'content-type': 'application/json', 'x-request-id': payloadId, 'x-should-retry': String(retried) });
  // A Retry-After of 0 (or a date gone by) the SDK takes as "at once": left out, it backs off instead.
  const retryAfter = parseRetryAfter(err.headers);
  for (const name of retryAfter !== undefined && retryAfter > 0 ? FORWARDED_ERROR_HEADERS : []) {
    const value = err.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  return new Response(JSON.stringify(body), { status: isError ? err.status : 502, headers });
}

/**
 * A request refused before anything was sent, as a Response the SDK raises at once and never
 * retries: thrown, an SDK takes it for a connection failure and retries it (LangChain for nearly
 * two minutes). Another endpoint is a 404 (the router serves none), a request that cannot be sent
 * as it is (its body, its tier) a 400; the message says that nothing went out.
 */
function refusalResponse(err: SecurityError | InvalidArgumentError): Response {
  const status = err instanceof SecurityError ? 404 : 400;
  const message = `${err.message} (createSecureFetch sent nothing)`;
  const body = { error: { message, type: errorType(status), param: null, code: err.code }, detail: null };
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'x-should-retry': 'false' } });
}

function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 429:
      return 'rate_limit_error';
    default:
      return status >= 500 ? 'server_error' : 'api_error';
  }
}

/**
 * What fetch throws when its signal aborts: the signal's reason (AbortError, TimeoutError, or the
 * caller's own). An abort without the caller's signal (the stream's controller) is an AbortError,
 * which SDKs recognise by name (the OpenAI SDK: APIUserAbortError).
 */
function abortReason(signal: AbortSignal | null | undefined, cause: unknown): unknown {
  return signal?.aborted ? signal.reason : abortError(cause);
}

function abortError(cause: unknown): DOMException {
  const error = new DOMException('request aborted by the caller', 'AbortError');
  // DOMException takes no options bag everywhere; set cause where the property is writable.
  try {
    Object.defineProperty(error, 'cause', { value: cause, configurable: true, writable: true });
  } catch {
    /* a frozen DOMException: the name is what SDKs check */
  }
  return error;
}
