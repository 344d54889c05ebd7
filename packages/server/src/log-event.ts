/**
 * What the router says of itself and of each request it ends (types.ts re-exports them): the events
 * `onLog` gets, and a request's summary, which the CLI writes as an access log line.
 */
import type { ProtocolVersion, SecurityTier } from '@nomyo/core/protocol';

/** A diagnostic of the router (see {@link ServerOptions.onLog}). */
export interface LogEvent {
  /** How much it matters: `error` for a failure of the router itself. */
  readonly level: 'info' | 'warn' | 'error';
  /** Our own words: never a plaintext, a key or an API key. */
  readonly message: string;
  /** Never a plaintext, never a key: method, path, status, the request's seq and payload id, timing and error text only. */
  readonly fields?: Readonly<Record<string, string | number | undefined>>;
  /** On the one event each answered request ends with: its summary, for access logs (`--log-format json`). */
  readonly request?: RequestSummary;
}

/**
 * One request, as an access log line tells it (the CLI's `--log-format json` writes it as it is). Numbers,
 * our own words and checked header values only: never a plaintext, a key, an API key or an Authorization header, nor a body.
 */
export interface RequestSummary {
  /** When the response ended, ISO 8601 (UTC). */
  readonly time: string;
  /** The HTTP method. */
  readonly method: string;
  /** The URL path, without the query string; past 256 characters cut, with its length. */
  readonly path: string;
  /** The caller's X-Payload-ID, when it is a well-formed one. */
  readonly payload_id: string | null;
  /** The protocol version of the opened secure completion; null for anything else, or a request that was not opened. */
  readonly protocol: ProtocolVersion | null;
  /** The caller's X-Security-Tier, when it is a valid one. */
  readonly tier: SecurityTier | null;
  /** Whether the answer was a stream. */
  readonly streamed: boolean;
  /** How a stream ended: `complete`, `error` (its final record carried one: the model's, the upstream's, or "router shutting down"), `aborted` (cut off before its final record: its client gone, or stalled); null when it did not stream. */
  readonly stream_outcome: 'complete' | 'error' | 'aborted' | null;
  /** The HTTP status; 0 when the connection was dropped without a response. */
  readonly status: number;
  /** From the request's arrival to its response's end (a stream's final record), in milliseconds. */
  readonly duration_ms: number;
  /** Body bytes received. */
  readonly bytes_in: number;
  /** Body bytes sent (a stream's events, heartbeats included). */
  readonly bytes_out: number;
  /** The upstream's HTTP status, when an upstream was called and answered. */
  readonly upstream_status: number | null;
}
