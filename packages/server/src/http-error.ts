import { MAX_ANSWER_DEPTH, type SealedError } from '@nomyo/core/protocol';

/** A response with a status and a `{"detail": ...}` body: how every refusal leaves the router. */
export class HttpError extends Error {
  /** A refusal to send: `detail` goes in the clear, so it never holds anything of a plaintext. */
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The body's `detail`. */
    readonly detail: string,
    /** Headers to send with it (`Retry-After`, `WWW-Authenticate`, …). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'HttpError';
  }
}

/**
 * A refusal whose real reason came from the upstream, which saw the plaintext: its errors repeat the
 * request (a model name, a fragment of the prompt). `detail` is generic, with the status class only;
 * `sealed` is the real reason, which goes only to a v2 client, sealed with its request's answer key
 * (handler.ts). Nothing of it reaches a header, a status line or a log in the clear.
 */
export class UpstreamError extends HttpError {
  /** `detail` generic (in the clear), `sealed` the upstream's real reason (for a v2 client only). */
  constructor(
    status: number,
    detail: string,
    /** The upstream's reason, sealed for a v2 client alone. */
    readonly sealed: SealedError,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(status, detail, headers);
    this.name = 'UpstreamError';
  }
}

/**
 * The `detail` of a 502 for an answer, or a streamed chunk, nested deeper than a client takes
 * (`MAX_ANSWER_DEPTH`: a caller's JSON.stringify recurses, so the client refuses it as an attack):
 * the inference backend's fault, said as such.
 */
export function nestedTooDeep(what: 'an answer' | 'a chunk'): string {
  return `the inference backend sent ${what} nested deeper than ${MAX_ANSWER_DEPTH}`;
}
