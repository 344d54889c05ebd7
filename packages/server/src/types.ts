/**
 * The public shapes of `@nomyo/server`: options, the request log and the test hooks.
 * Kept apart from the code so a reader sees the whole surface in one file.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AnswerPackage, EncryptedPackage, ProtocolVersion, SecurityTier } from '@nomyo/core/protocol';
import type { HttpError, UpstreamError } from './http-error.js';
import type { LogEvent } from './log-event.js';

/** One request as the server received it: what tests assert "reached the wire". */
export interface RequestRecord {
  /** 1-based order of arrival over the server's life (or since {@link NomyoServer.clearRequests}). */
  readonly seq: number;
  /** 1-based count of requests with the same method and path so far: the client's retry attempt. */
  readonly attempt: number;
  /** The HTTP method. */
  readonly method: string;
  /** The URL path without the query string. */
  readonly path: string;
  /** Header names are lowercase, as Node gives them. */
  readonly headers: IncomingHttpHeaders;
  /** The body bytes exactly as received (empty when the body went over `bodyLimit`). */
  readonly body: Uint8Array;
  /** How many body bytes were read: 0 for a body refused unread, up to the chunk that passed the limit for one cut off there. */
  readonly bodyLength: number;
  /** `Date.now()` when the body was fully received. */
  readonly receivedAt: number;
  /** Filled in when the server has responded (or dropped the connection). */
  response?: ResponseRecord;
}

/** How the server responded to a {@link RequestRecord}. */
export interface ResponseRecord {
  /** The HTTP status, or 0 when the connection was destroyed without a response. */
  readonly status: number;
  /** The response headers as sent, names lowercase. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body bytes exactly as sent (a streamed answer's whole event stream, heartbeats included, once it has ended). */
  readonly body: Uint8Array;
  /** Server time from body received to response written (for a stream: to its headers), in milliseconds (also sent as X-Processing-Time-Ms). */
  readonly processingMs: number;
  /** `answered` by the router, `intercepted` by a test hook, `destroyed` on purpose, or `aborted` by the peer or close(). */
  readonly outcome: 'answered' | 'intercepted' | 'destroyed' | 'aborted';
}

/** What an {@link Interceptor} sees: the request before normal handling. */
export type InterceptedRequest = Pick<RequestRecord, 'seq' | 'attempt' | 'method' | 'path' | 'headers' | 'body'>;

/**
 * What an {@link Interceptor} asks for. All fields are optional and combine:
 * first wait `delayMs`, then drop the connection (`destroy`), or respond with `status`, or,
 * with neither, go on with normal handling (a slow router).
 */
export interface InterceptAction {
  /** Wait this long first (counted in the processing time). Cut short by close() or a peer hang-up. */
  delayMs?: number;
  /** Destroy the socket without a response: a connection failure for the client. */
  destroy?: boolean;
  /** Answer this status instead of handling the request. */
  status?: number;
  /** Extra response headers, e.g. `{ 'Retry-After': '1' }`. CORS headers are added anyway. */
  headers?: Record<string, string>;
  /**
   * The response body: a string or bytes are sent raw (text/plain or application/octet-stream unless
   * `headers` names a Content-Type); anything else is sent as JSON. Absent: `{"detail": "<status text>"}`.
   */
  body?: unknown;
}

/**
 * A scripted-failure hook, called for every request after its body arrived and before the router
 * handles it. Return `undefined` to let the request through untouched.
 */
export type Interceptor = (request: InterceptedRequest) => InterceptAction | undefined | void | Promise<InterceptAction | undefined | void>;

/** The decrypted request as the router forwards it: an OpenAI chat-completions request. */
export interface ChatRequest {
  /** The model asked for: a non-empty string. */
  model: string;
  /** The conversation: a non-empty array. */
  messages: unknown[];
  /** OpenAI's tool definitions, when given. */
  tools?: unknown[];
  [key: string]: unknown;
}

/** What a {@link CompletionModel} knows of the request besides its plaintext. */
export interface ModelContext {
  /** The caller's X-Payload-ID. */
  readonly payloadId: string;
  /** The caller's X-Security-Tier, if any (never forwarded upstream). */
  readonly securityTier: SecurityTier | undefined;
  /** Aborted when the caller hangs up, or when the drain timeout of close() has passed: stop then (after 250 ms the request ends without the model). */
  readonly signal: AbortSignal;
  /**
   * Where a model that calls an upstream tells the router what came of it (its status, how it
   * failed), for the logs and metrics: never any text. The built-in upstream model fills it in.
   */
  readonly upstream?: UpstreamReport;
}

/** What came of a model's upstream call: numbers and kinds only, never the upstream's text. */
export interface UpstreamReport {
  /** The HTTP status of the upstream's response, once it has started. */
  status?: number;
  /** How the call failed: an error status or event, its connection, too slow, or what is no completion or chunk (`malformed`). */
  failure?: 'status' | 'connection' | 'timeout' | 'malformed';
}

/**
 * Answers a decrypted request with the object to seal (normally a chat.completion), or, when the
 * request has `stream: true`, with an async iterable of the `chat.completion.chunk` objects as the
 * model makes them (each sealed and sent as it comes) or a whole completion all the same. A v1
 * request never has `stream` (v1 never streams). Throw an {@link HttpError} to answer an error status
 * instead, or an {@link UpstreamError} for one whose text may quote the request; thrown while a
 * stream is under way, it ends the stream with a sealed final record that carries it. The built-in
 * ones are the echo model and the upstream forwarder; tests may pass their own to return anything.
 */
export type CompletionModel = (request: ChatRequest, context: ModelContext) => Promise<unknown> | unknown;

/** What the router logs: its events and each request's summary (log-event.ts). */
export type { LogEvent, RequestSummary } from './log-event.js';

/** The options of {@link createServer} and {@link startServer}; the CLI's flags map onto them. */
export interface ServerOptions {
  /** Interface to bind. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind; `0` (default) picks a free one. */
  port?: number;
  /** When set, requests to the secure-completion path need `Authorization: Bearer <apiKey>`. Not empty: leave it out for no API key. */
  apiKey?: string;
  /** PEM certificate chain and key: serve HTTPS instead of HTTP. */
  tls?: {
    /** The certificate chain, PEM. */
    cert: string;
    /** Its private key, PEM. As bytes it is never a string, which nothing can zero: zero them once {@link NomyoServer.listen} has resolved. */
    key: string | Uint8Array;
  };
  /**
   * The server's RSA private key file (PKCS#8 PEM, unencrypted). Loaded when present; else a new
   * key is generated and written there with mode 0600. Without it the key lives in memory only.
   */
  keyFile?: string;
  /**
   * Key files (PKCS#8 PEM, unencrypted) whose keys also open requests, though the router serves only
   * `keyFile`'s: a rotation's next key, then its old one (docs/deployment.md, "Rotating the key").
   */
  acceptKeyFiles?: readonly string[];
  /** Modulus of generated keys. Default 4096; at least 2048. */
  keySize?: number;
  /** OpenAI-compatible base URL (e.g. `http://127.0.0.1:8000/v1`); requests go to `{upstream}/chat/completions`. Without it: the echo model. No `user:password@` in it: its key goes in `upstreamKey`. */
  upstream?: string;
  /** Sent upstream as `Authorization: Bearer <upstreamKey>`. */
  upstreamKey?: string;
  /** Milliseconds to wait for the upstream's first byte (its response headers), and the longest silence after that, between two pieces of its body. Default 300000, at most 2147483647 (a timer's longest). Past it: 504 (in a stream, its final record). */
  upstreamTimeoutMs?: number;
  /** The echo model's pause between the words of a streamed answer, in ms (demos, tests). Default 0. */
  echoDelayMs?: number;
  /** From its header event on, a heartbeat comment after this many ms with nothing written (none while the client's socket is full); a stream whose model has been silent this long from the start starts then (stream-commit.ts). Default 15000. A client refuses over 64 KiB of them between two events: 19 h of silence at 15 s, 78 min at 1 s. */
  streamHeartbeatMs?: number;
  /** A stream whose client has not taken what waits for it (a full socket, or its last events) within this many ms is cut off, the model's request with it, a warning logged; so is a whole answer's client that takes none of it. Default 60000 (nginx's `send_timeout`); 0: never. */
  streamStallTimeoutMs?: number;
  /** Largest accepted request body in bytes. Default 64 MiB. Larger: 413, at once for a declared length, the moment a chunked one passes it, the connection closed. */
  bodyLimit?: number;
  /**
   * The highest wire protocol version spoken. `2` (default): advertises `X-Nomyo-Protocol: 1, 2` on
   * the key response, opens v2 packages (their X-Payload-ID and X-Security-Tier bound in, else 400) and
   * answers them with v2; v1 packages still get v1. `1`: a v1-only router, as routers deployed before
   * v2 are: no header, a `"version": "2.0"` package is refused with 400.
   */
  protocol?: ProtocolVersion;
  /**
   * Replaces echo/upstream (test hook): answer decrypted requests with anything. Its output is sealed
   * as it is; only an `upstream`'s answers have their envelope filled in and are checked (envelope.ts).
   */
  model?: CompletionModel;
  /** Test hook: called for every request once its body arrived, before handling. */
  onRequest?: (request: RequestRecord) => void;
  /** Test hook: scripted failures, delays and dropped connections. */
  interceptor?: Interceptor;
  /**
   * Test hook: replaces the sealed answer package (a v1 package, or a v2 answer without
   * `encrypted_aes_key`) before it is sent (tampering tests). A string is sent raw.
   */
  tamperResponse?: (pkg: EncryptedPackage | AnswerPackage, request: RequestRecord) => unknown;
  /** Keep a log of requests in {@link NomyoServer.requests}: `true` for all, a number for the latest N. Default false. */
  recordRequests?: boolean | number;
  /** Diagnostics, and one event per request with its {@link RequestSummary}; the library never writes to the console itself. */
  onLog?: (event: LogEvent) => void;
  /**
   * What close() gives requests and streams in flight to finish, in ms. Default 30000. A stream still
   * running then ends with a sealed final record that carries the error "router shutting down"; a
   * request not yet answered gets 503 with that detail.
   */
  drainTimeoutMs?: number;
  /** At most this many requests handled at once (GET /healthz, /metrics and CORS preflights not counted); above it, 503 with `Retry-After: 1`. Default: no limit. */
  maxConcurrent?: number;
  /** A client must send its request headers within this many ms of connecting (or of its previous request), else 408. Default 30000, or `requestTimeoutMs` when that is shorter (and not 0); not above it. */
  headersTimeoutMs?: number;
  /** A client must send its whole request, body included, within this many ms, else 408. Default 300000. */
  requestTimeoutMs?: number;
  /** An idle kept-alive connection is closed after this many ms. Default 65000: longer than a proxy's (nginx's upstream keepalive_timeout is 60 s), so the proxy closes first. */
  keepAliveTimeoutMs?: number;
  /** `GET /metrics` in the Prometheus text format. Default true. */
  metrics?: boolean;
  /** Serve /metrics on a listener of its own on this interface (then the main one answers 404 for it). Default 127.0.0.1 when `metricsPort` is given. */
  metricsHost?: string;
  /** Serve /metrics on a listener of its own on this port (`0`: a free one). */
  metricsPort?: number;
}

/** Counters since the server started (see {@link NomyoServer.stats}). */
export interface ServerStats {
  /** Every request, whatever its path or outcome. */
  requests: number;
  /** GET /pki/public_key requests answered with the key. */
  publicKeyFetches: number;
  /** Secure completions answered 200. */
  completions: number;
  /** Answers with a status >= 400 (intercepted ones included). */
  errors: number;
}

/** A running (or ready to run) reference router. */
export interface NomyoServer {
  /** Binds and loads (or generates) the key; resolves to this server. Idempotent. */
  listen(): Promise<NomyoServer>;
  /**
   * Drains and stops: stops accepting connections, closes idle kept-alive ones, answers any new
   * request on a kept-alive one with 503 and `Connection: close` (a CORS preflight with its 204 and
   * `Connection: close`), lets requests and streams in flight
   * finish for up to `drainTimeoutMs` (given here, it replaces the option), then ends what is left
   * (a stream with a final record that carries "router shutting down") and closes every connection.
   * Idempotent: later calls get the first call's promise.
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
  /** True from the start of close(): GET /healthz answers 503. */
  readonly draining: boolean;
  /** Installs a fresh key pair (in memory only: a `keyFile` is left as it is); packages sealed to the old key now get 400 (unless `acceptKeyFiles` holds it). */
  rotateKey(): Promise<{
    /** The new public key, SPKI PEM. */
    publicKeyPem: string;
    /** Its SHA-256 fingerprint, hex. */
    fingerprint: string;
  }>;
  /** Forgets the request log and the per-path attempt counters (not the stats). */
  clearRequests(): void;
  /** Origin to give clients, e.g. `http://127.0.0.1:40123`. After listen(). */
  readonly url: string;
  /** The bound port. After listen(). */
  readonly port: number;
  /** The server's public key, SPKI PEM, as GET /pki/public_key answers it. After listen(). */
  readonly publicKeyPem: string;
  /** Lowercase hex SHA-256 of the public key's SPKI DER. After listen(). */
  readonly fingerprint: string;
  /** The fingerprints of the keys of `acceptKeyFiles` (but the served one), which open requests too. After listen(). */
  readonly acceptedFingerprints: readonly string[];
  /** Where to scrape the metrics, e.g. `http://127.0.0.1:9464/metrics`: on the metrics listener when there is one, else on the main one; undefined with `metrics: false`. After listen(). */
  readonly metricsUrl: string | undefined;
  /** The request log (see `recordRequests`), oldest first. */
  readonly requests: readonly RequestRecord[];
  /** Counters since start. */
  readonly stats: Readonly<ServerStats>;
}
