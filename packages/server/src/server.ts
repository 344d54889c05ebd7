/** createServer: the options checked, the key loaded, Node's http(s) server bound, the test hooks wired. */
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { PROTOCOL_VERSIONS, RSA_DEFAULT_BITS, RSA_MIN_BITS, STREAM_HEARTBEAT_MS } from '@nomyo/core/protocol';
import { MAX_TIMER_MS } from '@nomyo/core/internal';
import { answerClientErrors } from './client-error.js';
import { ConcurrencyLimit } from './concurrency.js';
import { DEFAULT_BODY_LIMIT, DEFAULT_HOST, DEFAULT_STREAM_STALL_TIMEOUT_MS, DEFAULT_UPSTREAM_TIMEOUT_MS, LISTENER_DEFAULTS } from './constants.js';
import { dispatch, type DispatchState } from './dispatch.js';
import { Drain } from './drain.js';
import { echoModelWith } from './echo-model.js';
import { normalisingModel } from './envelope.js';
import { generateKeyPair, loadAcceptedKeyFile, obtainKeyPair, type ServerKeyPair } from './keys.js';
import { METRICS_PATH, RouterMetrics, metricsListener } from './metrics.js';
import { MODEL_ABORT_GRACE_MS } from './model-abort.js';
import { RequestLog } from './request-log.js';
import { routerBuffers } from './buffers.js';
import { upstreamModel } from './upstream.js';
import type { NomyoServer, ServerOptions, ServerStats } from './types.js';

/**
 * Throws a RangeError or TypeError that names the option, for options {@link createServer} refuses.
 * The CLI runs it before it starts, to say the same in terms of its flags (one place for each limit).
 */
export function checkOptions(o: ServerOptions): void {
  const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): boolean => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
  if (o.port !== undefined && !isInt(o.port, 0, 65535)) throw new RangeError('port must be an integer from 0 to 65535');
  if (o.bodyLimit !== undefined && !isInt(o.bodyLimit, 1)) throw new RangeError('bodyLimit must be a positive integer');
  if (o.keySize !== undefined && !isInt(o.keySize, RSA_MIN_BITS)) throw new RangeError(`keySize must be an integer >= ${RSA_MIN_BITS}`);
  if (o.upstreamTimeoutMs !== undefined && !isInt(o.upstreamTimeoutMs, 1, MAX_TIMER_MS)) throw new RangeError(`upstreamTimeoutMs must be an integer from 1 to ${MAX_TIMER_MS}`);
  if (o.echoDelayMs !== undefined && !isInt(o.echoDelayMs, 0, MAX_TIMER_MS)) throw new RangeError(`echoDelayMs must be an integer from 0 to ${MAX_TIMER_MS}`);
  if (o.streamHeartbeatMs !== undefined && !isInt(o.streamHeartbeatMs, 1, MAX_TIMER_MS)) throw new RangeError(`streamHeartbeatMs must be an integer from 1 to ${MAX_TIMER_MS}`);
  if (o.echoDelayMs !== undefined && (o.upstream !== undefined || o.model !== undefined)) throw new TypeError(`echoDelayMs is for the echo model: give no ${o.upstream !== undefined ? 'upstream' : 'model'} with it`);
  if (o.upstream !== undefined) checkUpstream(o.upstream);
  if (o.apiKey === '') throw new TypeError('apiKey must not be empty: leave it out for a router that needs no API key');
  // What a client can send in its Authorization header; any other key would refuse every client. Never echoed.
  if (o.apiKey !== undefined && !/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(o.apiKey)) {
    throw new TypeError('apiKey must be printable ASCII without spaces at its ends (a client sends it in a header)');
  }
  if (o.upstream !== undefined && o.model !== undefined) throw new TypeError('give either upstream or model, not both');
  // An empty key (a secret that did not arrive) would fail every request with a 502. (Without an upstream it is unused.)
  if (o.upstreamKey === '' && o.upstream !== undefined) throw new TypeError('upstreamKey must not be empty: leave it out for an upstream that needs none');
  if (o.acceptKeyFiles !== undefined && (!Array.isArray(o.acceptKeyFiles) || !o.acceptKeyFiles.every((f) => typeof f === 'string' && f !== ''))) {
    throw new TypeError('acceptKeyFiles must be a list of key file paths');
  }
  if (o.protocol !== undefined && !(PROTOCOL_VERSIONS as readonly unknown[]).includes(o.protocol)) throw new RangeError(`protocol must be one of ${PROTOCOL_VERSIONS.join(', ')}`);
  if (o.tls !== undefined && (typeof o.tls.cert !== 'string' || (typeof o.tls.key !== 'string' && !(o.tls.key instanceof Uint8Array)))) {
    throw new TypeError('tls needs a cert PEM string and a key PEM string or bytes');
  }
  for (const name of ['drainTimeoutMs', 'headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'streamStallTimeoutMs'] as const) {
    if (o[name] !== undefined && !isInt(o[name], 0, MAX_TIMER_MS)) throw new RangeError(`${name} must be an integer from 0 to ${MAX_TIMER_MS}`);
  }
  if (o.maxConcurrent !== undefined && !isInt(o.maxConcurrent, 1)) throw new RangeError('maxConcurrent must be a positive integer');
  if (o.metricsPort !== undefined && !isInt(o.metricsPort, 0, 65535)) throw new RangeError('metricsPort must be an integer from 0 to 65535');
  if (o.metrics === false && (o.metricsHost !== undefined || o.metricsPort !== undefined)) throw new TypeError('metricsHost and metricsPort need metrics on');
  // Only a headers timeout given can be above the request timeout: its default follows it.
  const { headersTimeout, requestTimeout } = clientTimeouts(o);
  if (requestTimeout !== 0 && headersTimeout > requestTimeout) throw new RangeError('headersTimeoutMs must not be above requestTimeoutMs');
}

/**
 * An upstream is an http(s) URL without a user or password: those would never be sent (its key goes
 * in `upstreamKey`, as a bearer token), and a URL is no place for a secret. Never echoes the URL.
 */
function checkUpstream(upstream: string): void {
  if (!/^https?:\/\/[^/]/i.test(upstream) || !URL.canParse(upstream)) throw new TypeError('upstream must be an http(s) URL');
  const url = new URL(upstream);
  if (url.username !== '' || url.password !== '') throw new TypeError('upstream must not hold a user name or password (user:password@): give its key as upstreamKey instead');
  // The router posts to {upstream}/chat/completions: a query or fragment would swallow that path (and may hold a key).
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(upstream)) throw new TypeError('upstream must not hold a query or fragment (?…, #…): it is the base URL that /chat/completions is added to');
}

/**
 * The header and request timeouts, in ms. Without a headers timeout of its own, a request timeout
 * shorter than the headers default is the headers timeout too (Node's own rule), so that a short
 * request timeout alone is no conflict. One that is off (0) leaves the headers default on: it turns
 * off the limit on a slow body, not the one on slow headers.
 */
function clientTimeouts(o: ServerOptions): { headersTimeout: number; requestTimeout: number } {
  const requestTimeout = o.requestTimeoutMs ?? LISTENER_DEFAULTS.requestTimeoutMs;
  const headersDefault = requestTimeout > 0 ? Math.min(LISTENER_DEFAULTS.headersTimeoutMs, requestTimeout) : LISTENER_DEFAULTS.headersTimeoutMs;
  return { headersTimeout: o.headersTimeoutMs ?? headersDefault, requestTimeout };
}

/**
 * Node's listener limits on slow clients (0 turns one off). Node checks the header and request
 * timeouts every `connectionsCheckingInterval` ms: a tenth of the shorter one, so they hold to 10%.
 */
function listenerOptions(o: ServerOptions): http.ServerOptions {
  const { headersTimeout, requestTimeout } = clientTimeouts(o);
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0), 300_000);
  return {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: o.keepAliveTimeoutMs ?? LISTENER_DEFAULTS.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(shortest / 10))),
  };
}

/** Binds `server` to `host`:`port`; resolves to the address. */
function bindTo(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** A TLS key as node:tls takes it: a string, or a Buffer over the caller's bytes (not a copy, which nobody would zero). */
function tlsKey(key: string | Uint8Array): string | Buffer {
  return typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

/** The host part of a URL for the bound address: wildcards become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Creates a reference NOMYO router. Nothing happens until {@link NomyoServer.listen}, which loads
 * or generates the key and binds.
 *
 * @example
 * ```ts
 * const server = await createServer({ keySize: 2048, recordRequests: true }).listen();
 * const client = new SecureChatCompletion({ baseUrl: server.url, allowHttp: true });
 * // ... server.requests, server.stats
 * await server.close();
 * ```
 */
export function createServer(options: ServerOptions = {}): NomyoServer {
  checkOptions(options);
  const host = options.host ?? DEFAULT_HOST;
  const keySize = options.keySize ?? RSA_DEFAULT_BITS;
  // Aborted at the drain deadline (drain.ts): what is still under way then is ended.
  const closing = new AbortController();
  // Every request in flight listens on this one signal: no listener cap (Node warns at 10).
  setMaxListeners(0, closing.signal);
  const stats: ServerStats = { requests: 0, publicKeyFetches: 0, completions: 0, errors: 0 };
  const log = new RequestLog(options.recordRequests ?? false);
  let keyPair: ServerKeyPair | undefined;
  /** The keys of `acceptKeyFiles`, as loaded; `accepted`: those but the served one; `opening`: the served key, then those. */
  let acceptable: ServerKeyPair[] = [];
  let accepted: ServerKeyPair[] = [];
  let opening: readonly CryptoKey[] = [];
  let acceptedPrints: readonly string[] = [];
  const useKeys = (served: ServerKeyPair): void => {
    keyPair = served;
    accepted = acceptable.filter((pair, i) => pair.fingerprint !== served.fingerprint && acceptable.findIndex((p) => p.fingerprint === pair.fingerprint) === i);
    opening = [served.privateKey, ...accepted.map((pair) => pair.privateKey)];
    acceptedPrints = accepted.map((pair) => pair.fingerprint);
  };
  let address: AddressInfo | undefined;
  let metricsAddress: AddressInfo | undefined;
  let listening: Promise<NomyoServer> | undefined;
  let closed: Promise<void> | undefined;
  const metrics = options.metrics === false ? undefined : new RouterMetrics();
  const separateMetrics = metrics !== undefined && (options.metricsHost !== undefined || options.metricsPort !== undefined);
  const metricsHost = options.metricsHost ?? DEFAULT_HOST;

  const model =
    options.model ??
    (options.upstream !== undefined
      ? normalisingModel(upstreamModel({ baseUrl: options.upstream, apiKey: options.upstreamKey, timeoutMs: options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS }))
      : echoModelWith({ delayMs: options.echoDelayMs ?? 0 }));

  // A body may be kept after its request only through the request log or a test hook: without them, reuse.
  const exclusiveBodies = !options.recordRequests && !options.onRequest && !options.interceptor && !options.tamperResponse;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => void dispatch(state, req, res);
  const limits = listenerOptions(options);
  // Over TLS the headers timeout bounds the handshake too: Node's own 120 s were a slowloris's to take.
  const httpServer = options.tls ? https.createServer({ ...limits, ...(limits.headersTimeout ? { handshakeTimeout: limits.headersTimeout } : {}), cert: options.tls.cert, key: tlsKey(options.tls.key) }, listener) : http.createServer(limits, listener);
  // Expect: 100-continue (HTTP/1.1; Node answers other expectations 417): the continue only where a body is wanted (receive.ts).
  httpServer.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => void dispatch(state, req, res, true));
  const metricsServer = separateMetrics ? metricsListener(metrics!) : undefined;
  const drain = new Drain(httpServer, closing);

  const state: DispatchState = {
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    buffers: routerBuffers(exclusiveBodies),
    streaming: {
      heartbeatMs: options.streamHeartbeatMs ?? STREAM_HEARTBEAT_MS,
      stallMs: options.streamStallTimeoutMs ?? DEFAULT_STREAM_STALL_TIMEOUT_MS,
      onStall: (fields) => state.emit({ level: 'warn', message: `a stream's client took nothing for ${state.streaming.stallMs} ms: its connection was closed`, fields }),
      onInternalError: (name, fields) => state.emit({ level: 'error', message: `internal error in a stream (${name})`, fields }),
      onDeafModel: (fields) => state.emit({ level: 'warn', message: `the model went on ${MODEL_ABORT_GRACE_MS} ms after its request was aborted: the request ended without it`, fields }),
    },
    apiKey: options.apiKey,
    model,
    protocol: options.protocol ?? 2,
    hooks: { onRequest: options.onRequest, interceptor: options.interceptor, tamperResponse: options.tamperResponse },
    log,
    stats,
    closing: closing.signal,
    drain,
    limit: new ConcurrencyLimit(options.maxConcurrent),
    metrics,
    metricsHere: metrics !== undefined && !separateMetrics,
    keyPair: () => {
      if (!keyPair) throw new Error('the server key is not loaded');
      return keyPair;
    },
    openingKeys: () => opening,
    acceptedFingerprints: () => acceptedPrints,
    emit: (event) => {
      try {
        options.onLog?.(event);
      } catch {
        // A failing log sink must not take requests down with it.
      }
    },
  };
  answerClientErrors(httpServer, state); // Node's own refusals (400, 408, 413, 431), logged and counted
  const bound = (): AddressInfo => {
    if (!address) throw new Error('the server is not listening: await listen() first');
    return address;
  };

  async function bind(): Promise<NomyoServer> {
    const warn = (message: string) => state.emit({ level: 'warn', message });
    const served = await obtainKeyPair(options.keyFile, keySize, warn);
    acceptable = await Promise.all((options.acceptKeyFiles ?? []).map((file) => loadAcceptedKeyFile(file, warn)));
    useKeys(served);
    if (drain.draining) throw new Error('the server was closed before it listened');
    address = await bindTo(httpServer, options.port ?? 0, host);
    if (metricsServer) {
      try {
        metricsAddress = await bindTo(metricsServer, options.metricsPort ?? 0, metricsHost);
      } catch (err) {
        httpServer.close();
        throw err;
      }
    }
    return server;
  }

  async function stop(drainTimeoutMs: number): Promise<void> {
    await drain.run(drainTimeoutMs);
    if (metricsServer?.listening) {
      const stopped = new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      metricsServer.closeAllConnections();
      await stopped;
    }
  }

  const server: NomyoServer = {
    listen: () => (listening ??= bind()),
    close: (opts) => (closed ??= stop(opts?.drainTimeoutMs ?? options.drainTimeoutMs ?? LISTENER_DEFAULTS.drainTimeoutMs)),
    get draining() {
      return drain.draining;
    },
    get metricsUrl() {
      if (!metrics) return undefined;
      if (!metricsServer) return `${server.url}${METRICS_PATH}`;
      if (!metricsAddress) throw new Error('the server is not listening: await listen() first');
      return `http://${urlHost(metricsHost)}:${metricsAddress.port}${METRICS_PATH}`;
    },
    async rotateKey() {
      const fresh = await generateKeyPair(keySize);
      useKeys(fresh);
      return { publicKeyPem: fresh.publicKeyPem, fingerprint: fresh.fingerprint };
    },
    clearRequests: () => log.clear(),
    get url() {
      return `${options.tls ? 'https' : 'http'}://${urlHost(host)}:${bound().port}`;
    },
    get port() {
      return bound().port;
    },
    get publicKeyPem() {
      return state.keyPair().publicKeyPem;
    },
    get fingerprint() {
      return state.keyPair().fingerprint;
    },
    get acceptedFingerprints() {
      state.keyPair(); // loaded
      return acceptedPrints;
    },
    get requests() {
      return log.records;
    },
    get stats() {
      return stats;
    },
  };
  return server;
}

/** `createServer(options).listen()`: a bound, ready router. */
export function startServer(options: ServerOptions = {}): Promise<NomyoServer> {
  return createServer(options).listen();
}
