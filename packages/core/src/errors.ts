/**
 * Every error @nomyo/core throws. Each class has a stable `code` (also a static), so callers can
 * branch on `err.code` across bundles and realms where `instanceof` may fail.
 */

/** The `code` of every error class: stable across versions, bundles and realms. */
export type ErrorCode =
  | 'ERR_NOMYO'
  | 'ERR_NOMYO_API'
  | 'ERR_NOMYO_INVALID_REQUEST'
  | 'ERR_NOMYO_AUTHENTICATION'
  | 'ERR_NOMYO_FORBIDDEN'
  | 'ERR_NOMYO_RATE_LIMIT'
  | 'ERR_NOMYO_SERVER'
  | 'ERR_NOMYO_SERVICE_UNAVAILABLE'
  | 'ERR_NOMYO_CONNECTION'
  | 'ERR_NOMYO_TIMEOUT'
  | 'ERR_NOMYO_STREAM_TRUNCATED'
  | 'ERR_NOMYO_ABORTED'
  | 'ERR_NOMYO_SECURITY'
  | 'ERR_NOMYO_INVALID_ARGUMENT'
  | 'ERR_NOMYO_DISPOSED'
  | 'ERR_NOMYO_KEY_FILE'
  | 'ERR_NOMYO_KEY_PASSWORD';

/** Base class of every error thrown by NOMYO.js. */
export class NomyoError extends Error {
  /** The code every instance of this class carries: compare `err.code` with it where `instanceof` may fail. */
  static readonly code: ErrorCode = 'ERR_NOMYO';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'NomyoError';
  /** This error's class code (`ERR_NOMYO_…`), stable across versions. */
  readonly code: ErrorCode;

  /** `message` never holds a secret (no key, plaintext or API key); `cause` is the underlying error, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = (new.target as unknown as { code: ErrorCode }).code;
  }
}

/** The caller passed something the library refuses before anything is sent. */
export class InvalidArgumentError extends NomyoError {
  /** `ERR_NOMYO_INVALID_ARGUMENT`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_INVALID_ARGUMENT';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'InvalidArgumentError';
}

/**
 * A decryption, format or integrity failure of an answer, or a transport-policy violation
 * (plain HTTP without `allowHttp`, a server key that fails validation or pinning).
 * Crypto failures all carry one generic message, so the error is no oracle.
 */
export class SecurityError extends NomyoError {
  /** `ERR_NOMYO_SECURITY`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_SECURITY';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'SecurityError';
}

/** The client (or its key holder) was disposed; create a new one. */
export class DisposedError extends NomyoError {
  /** `ERR_NOMYO_DISPOSED`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_DISPOSED';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'DisposedError';
}

/** The router could not be reached: refused, reset, DNS or TLS failure. */
export class APIConnectionError extends NomyoError {
  /** `ERR_NOMYO_CONNECTION`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_CONNECTION';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'APIConnectionError';
}

/**
 * The request did not complete within `timeout` ms (a stream: its header event did not come within
 * `timeout`), or a started stream was silent for `streamIdleTimeout` ms while a read waited.
 */
export class APIConnectionTimeoutError extends APIConnectionError {
  /** `ERR_NOMYO_TIMEOUT`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_TIMEOUT';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'APIConnectionTimeoutError';
}

/**
 * A streamed answer ended before its final record: the connection closed or failed part way. The
 * chunks before it were real, but the answer was cut short: it never ends as if it were complete.
 */
export class StreamTruncatedError extends APIConnectionError {
  /** `ERR_NOMYO_STREAM_TRUNCATED`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_STREAM_TRUNCATED';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'StreamTruncatedError';
}

/** The caller's `signal` aborted the request. Never retried. */
export class APIUserAbortError extends NomyoError {
  /** `ERR_NOMYO_ABORTED`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_ABORTED';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'APIUserAbortError';
}

/** Options common to every API error. */
export interface APIErrorInit {
  /** The router's `detail`, already sanitized (see {@link sanitizeDetail}). */
  detail?: string | undefined;
  /** The response's headers (`Retry-After`, `x-request-id`, …). */
  headers?: Headers | undefined;
  /** The detail came sealed for this request (v2): see {@link APIError.sealed}. Implied by `error`. */
  sealed?: boolean | undefined;
  /** The error object the router sealed for this request, its text already sanitized: see {@link APIError.error}. */
  error?: SealedErrorObject | undefined;
  /** The X-Payload-ID of the request this answers: see {@link APIError.payloadId}. */
  payloadId?: string | undefined;
}

/**
 * An error the router sealed for this request (protocol v2), shaped as api.openai.com's `error`
 * object, so code written for openai-node's `err.error` reads it. Its strings came from the network
 * (most from the model's server, which saw the prompt): each is sanitized like a `detail`, at most
 * 100 printable characters, but the message: 2000 (`MAX_SEALED_MESSAGE_CHARS`).
 */
export interface SealedErrorObject {
  /** What went wrong; the same text as {@link APIError.detail}. */
  readonly message: string;
  /** The model server's error type (`invalid_request_error`, …), or `upstream_error` when the router says it. */
  readonly type: string;
  /** The model server's error code (`context_length_exceeded`, …), or null when it gave none. */
  readonly code: string | number | null;
  /** The request parameter the error is about (`messages`, …), or null when the model server named none. */
  readonly param: string | null;
}

/** A non-200 response from the router. Subclasses name the statuses the protocol defines. */
export class APIError extends NomyoError {
  /** `ERR_NOMYO_API`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_API';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'APIError';
  /** The HTTP status the router answered (or sealed, for a v2 sealed error). */
  readonly status: number;
  /**
   * The router's `detail`, at most 100 printable characters, or a sealed error's message, at most
   * 2000; never control characters.
   */
  readonly detail: string | undefined;
  /** The response's headers; empty when there were none. */
  readonly headers: Headers;
  /**
   * True when the detail came sealed with this request's answer key (protocol v2: an error whose
   * text came from the model's server): the router that opened the request said it, and nothing on
   * the way read or changed it. So did the status when the router sealed one (the reference router
   * always does); one that did not is typed by the response's HTTP status, which is not sealed, nor
   * is `Retry-After`. False for a plain error response, which anything on the way can fake.
   */
  readonly sealed: boolean;
  /**
   * The error object the router sealed for this request, as openai-node's `err.error`: the model
   * server's `type` and `code` (`err.error?.code === 'context_length_exceeded'`). Undefined for a
   * plain error response, which carries only a `detail`. (`err.code` is this class's `ERR_NOMYO_…`.)
   */
  readonly error: SealedErrorObject | undefined;
  /** The model server's error type, as openai-node's `err.type`: `error.type`, or undefined. */
  readonly type: string | undefined;
  /**
   * The X-Payload-ID the request was sent with (what the reference router logs as `payload_id`),
   * to find its line in the router's logs; undefined for an error of no request (the router's key).
   */
  readonly payloadId: string | undefined;

  /** The message is `<status>: <detail>`, or says only the status when there is no detail. */
  constructor(status: number, init: APIErrorInit = {}) {
    const detail = init.detail;
    super(detail ? `${status}: ${detail}` : `the router answered ${status}`);
    this.status = status;
    this.detail = detail;
    this.headers = init.headers ?? new Headers();
    this.error = init.error;
    this.type = init.error?.type;
    this.sealed = init.sealed ?? init.error !== undefined;
    this.payloadId = init.payloadId;
  }

  /** The `x-request-id` header when the router sent one, else the request's {@link APIError.payloadId}, else null. */
  get requestId(): string | null {
    return this.headers.get('x-request-id') ?? this.payloadId ?? null;
  }
}

/** 400: the router refused the request (a package it could not open, a bad header, an upstream's refusal). */
export class InvalidRequestError extends APIError {
  /** `ERR_NOMYO_INVALID_REQUEST`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_INVALID_REQUEST';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'InvalidRequestError';
}
/** 401: a missing or wrong API key. */
export class AuthenticationError extends APIError {
  /** `ERR_NOMYO_AUTHENTICATION`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_AUTHENTICATION';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'AuthenticationError';
}
/** 403: the model is not allowed for the security tier. */
export class ForbiddenError extends APIError {
  /** `ERR_NOMYO_FORBIDDEN`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_FORBIDDEN';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'ForbiddenError';
}
/** 429: too many requests; retried after `retryAfter` up to `maxRetries` times. */
export class RateLimitError extends APIError {
  /** `ERR_NOMYO_RATE_LIMIT`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_RATE_LIMIT';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'RateLimitError';
  /** Seconds the router asked us to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
  /** As {@link APIError}'s, with the `Retry-After` the router sent, in seconds. */
  constructor(status: number, init: APIErrorInit & { retryAfter?: number | undefined } = {}) {
    super(status, init);
    this.retryAfter = init.retryAfter;
  }
}
/** 500: the router failed. */
export class ServerError extends APIError {
  /** `ERR_NOMYO_SERVER`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_SERVER';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'ServerError';
}
/** 503: the router or its upstream is unavailable; retried after `retryAfter` (or a backoff) up to `maxRetries` times. */
export class ServiceUnavailableError extends APIError {
  /** `ERR_NOMYO_SERVICE_UNAVAILABLE`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_SERVICE_UNAVAILABLE';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'ServiceUnavailableError';
  /** Seconds the router asked us to wait (`Retry-After`: a router at its limit or draining says 1), when it said. */
  readonly retryAfter: number | undefined;
  /** As {@link APIError}'s, with the `Retry-After` the router sent, in seconds. */
  constructor(status: number, init: APIErrorInit & { retryAfter?: number | undefined } = {}) {
    super(status, init);
    this.retryAfter = init.retryAfter;
  }
}

/** A key file could not be read, parsed or used (corrupt, not RSA, too small). */
export class KeyFileError extends NomyoError {
  /** `ERR_NOMYO_KEY_FILE`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_KEY_FILE';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'KeyFileError';
}

/** A password-protected key file did not open: wrong password or corrupt file (deliberately not told apart). */
export class KeyPasswordError extends KeyFileError {
  /** `ERR_NOMYO_KEY_PASSWORD`. */
  static override readonly code: ErrorCode = 'ERR_NOMYO_KEY_PASSWORD';
  /** Written out, not read off the class: minifiers rename classes. */
  override name = 'KeyPasswordError';
}
