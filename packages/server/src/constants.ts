/** Facts of this server that are not part of the wire protocol (those live in @nomyo/core/protocol). */

/** Response header with the server's own processing time in milliseconds (body received to response written). */
export const PROCESSING_TIME_HEADER = 'X-Processing-Time-Ms';

export const DEFAULT_HOST = '127.0.0.1';
/** Bytes in a MiB, for limits said in MiB. */
export const MIB = 1024 * 1024;
/** The longest path a request's log line holds whole: a made-up one may be as long as Node's header limit (16 KiB). */
export const MAX_LOGGED_PATH_CHARS = 256;
/** Request bodies above this get 413: base64 of a 10 MiB plaintext is ~14 MiB, so this leaves room. */
export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 300_000;
/** A streamed answer whose client takes nothing for this long is cut off: nginx's send_timeout, for a router reached directly. */
export const DEFAULT_STREAM_STALL_TIMEOUT_MS = 60_000;

/** Defaults of the listener's limits and of the drain, in ms (ServerOptions says what each is). */
export const LISTENER_DEFAULTS = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
  drainTimeoutMs: 30_000,
} as const;
/**
 * The most a request's Content-Length reserves before any of its body has come: it is only the
 * client's word (100 clients declaring 60 MiB each must not reserve 6 GiB). The buffer then doubles
 * as the body arrives, up to the declared length: memory in proportion to what was received, and
 * a large body copied about once more in all (1 + 2 + 4 + … MiB), where a buffer per chunk joined
 * at the end would copy all of it.
 */
export const FIRST_BODY_BLOCK_BYTES = MIB;
