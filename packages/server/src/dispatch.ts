/**
 * One request's life: admitted (admission.ts: not while draining, nor past `maxConcurrent`), read
 * the body (under the limit), log it, give the test hooks their turn, route, respond, and end with
 * its log event and metrics. Nothing a client sends can throw out of here: every failure becomes a
 * response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HEADERS, PATHS, formatProtocolHeader, type PrivateKeys, type ProtocolVersion } from '@nomyo/core/protocol';
import { linkedController, sleep } from '@nomyo/core/internal';
import { admit, requestEnded } from './admission.js';
import { whenRequestEnds } from './response-end.js';
import type { AnswerStreamOptions, StreamOutcome } from './answer-stream.js';
import { BodyCutOff, type ReceivedBody } from './body.js';
import { requestUnderway } from './client-error.js';
import { receive } from './receive.js';
import type { RouterBuffers } from './buffers.js';
import { PROCESSING_TIME_HEADER } from './constants.js';
import type { ConcurrencyLimit } from './concurrency.js';
import { PREFLIGHT_HEADERS } from './cors.js';
import { DRAIN_HEADERS, SHUTTING_DOWN, isShutdown, type Drain } from './drain.js';
import { handleSecureCompletion } from './handler.js';
import { HEALTH_PATH, healthResponse } from './health.js';
import { HttpError } from './http-error.js';
import type { ServerKeyPair } from './keys.js';
import { METRICS_PATH, type RouterMetrics } from './metrics.js';
import { RequestFacts } from './request-facts.js';
import type { RequestLog } from './request-log.js';
import { cutOffWhenStalled, detailResponse, interceptResponse, jsonResponse, textResponse, writeResponse, type RouterResponse, type StreamWatch } from './respond.js';
import type { CompletionModel, LogEvent, RequestRecord, ResponseRecord, ServerOptions, ServerStats } from './types.js';

export interface DispatchState {
  readonly bodyLimit: number;
  readonly buffers: RouterBuffers;
  /** How streamed answers are written: heartbeat, internal errors reported. */
  readonly streaming: AnswerStreamOptions;
  readonly apiKey: string | undefined;
  readonly model: CompletionModel;
  /** The highest protocol version spoken: 2 advertises `1, 2` and opens v2 packages; 1 is a v1-only router. */
  readonly protocol: ProtocolVersion;
  readonly hooks: Pick<ServerOptions, 'onRequest' | 'interceptor' | 'tamperResponse'>;
  readonly log: RequestLog;
  readonly stats: ServerStats;
  /** Aborted (with a ShutdownError) at the drain deadline of close(): ends delays, upstream calls and streams still under way. */
  readonly closing: AbortSignal;
  readonly drain: Drain;
  readonly limit: ConcurrencyLimit;
  /** Undefined with `metrics: false`. */
  readonly metrics: RouterMetrics | undefined;
  /** Whether GET /metrics is served here (not on a listener of its own). */
  readonly metricsHere: boolean;
  keyPair(): ServerKeyPair;
  /** What opens requests: the served key, then the accepted ones (`acceptKeyFiles`). */
  openingKeys(): PrivateKeys;
  /** The accepted keys' fingerprints (for /healthz). */
  acceptedFingerprints(): readonly string[];
  emit(event: LogEvent): void;
}

type Decision = { response: RouterResponse; outcome: ResponseRecord['outcome'] } | { response: 'destroy'; outcome: 'destroyed' | 'aborted' };

const EMPTY = new Uint8Array(0);

function methodNotAllowed(allow: string): HttpError {
  return new HttpError(405, 'method not allowed', { Allow: allow });
}

/** The key response says which versions this router speaks; a v1-only router sends no header, as routers did before v2. */
function advertise(state: DispatchState, response: RouterResponse): RouterResponse {
  if (state.protocol >= 2) response.headers[HEADERS.protocol] = formatProtocolHeader(state.protocol);
  return response;
}

/** Routes the request; a secure completion takes its body over, anything else leaves it to the caller. */
async function route(state: DispatchState, req: IncomingMessage, record: RequestRecord, received: ReceivedBody, signal: AbortSignal, facts: RequestFacts): Promise<RouterResponse> {
  if (received.refused) throw received.refused;
  if (req.method === 'OPTIONS') return { status: 204, headers: { ...PREFLIGHT_HEADERS }, body: EMPTY };
  // Close after a 413: the peer may be a client that never stops sending.
  if (received.overLimit && record.path === PATHS.secureCompletion && req.method === 'POST') {
    throw new HttpError(413, `request body exceeds ${state.bodyLimit} bytes`, { Connection: 'close' });
  }
  /** The other routes take no body: one was left unread (receive.ts). */
  const noBody = () => {
    if (received.unsent) throw new HttpError(413, 'this request takes no body', { Connection: 'close' });
  };
  switch (record.path) {
    case HEALTH_PATH:
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed('GET, HEAD, OPTIONS');
      noBody();
      return healthResponse(state.drain.draining, state.protocol, state.keyPair().fingerprint, state.acceptedFingerprints());
    case METRICS_PATH: {
      if (!state.metrics || !state.metricsHere) throw new HttpError(404, 'not found');
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed('GET, HEAD, OPTIONS');
      noBody();
      const { contentType, text } = await state.metrics.exposition();
      const response = textResponse(200, text, contentType);
      response.headers['Cache-Control'] = 'no-store';
      return response;
    }
    case PATHS.publicKey:
      if (req.method !== 'GET') throw methodNotAllowed('GET, OPTIONS');
      noBody();
      state.stats.publicKeyFetches++;
      return advertise(state, textResponse(200, state.keyPair().publicKeyPem));
    case PATHS.secureCompletion: {
      if (req.method !== 'POST') throw methodNotAllowed('POST, OPTIONS');
      const response = await handleSecureCompletion({
        headers: req.headers,
        body: received.body,
        privateKeys: state.openingKeys(),
        model: state.model,
        protocol: state.protocol,
        buffers: state.buffers,
        streaming: state.streaming,
        signal,
        facts,
        logFields: { seq: record.seq },
      });
      state.stats.completions++;
      const tamper = state.hooks.tamperResponse;
      // The hook sees whole answers only: a streamed one is written as it is made.
      return tamper && response.status === 200 && !response.stream ? tampered(response, (pkg) => tamper(pkg as never, record)) : response;
    }
    default:
      throw new HttpError(404, 'not found');
  }
}

/** Test hook: the sealed answer handed to `tamper` as a package object, and its result sent instead (a string raw). */
async function tampered(response: RouterResponse, tamper: (pkg: unknown) => unknown): Promise<RouterResponse> {
  const pkg: unknown = JSON.parse(new TextDecoder().decode(response.body));
  response.release?.();
  const replaced = await tamper(pkg);
  return typeof replaced === 'string' ? textResponse(200, replaced, 'application/json') : jsonResponse(200, replaced);
}

async function decide(state: DispatchState, req: IncomingMessage, record: RequestRecord, received: ReceivedBody, signal: AbortSignal, facts: RequestFacts): Promise<Decision> {
  const { seq, attempt, method, path, headers, body } = record;
  const action = (await state.hooks.interceptor?.({ seq, attempt, method, path, headers, body })) ?? undefined;
  if (action?.delayMs) await sleep(action.delayMs, signal);
  if (action?.destroy) return { response: 'destroy', outcome: 'destroyed' };
  if (action?.status !== undefined) return { response: interceptResponse({ ...action, status: action.status }), outcome: 'intercepted' };
  return { response: await route(state, req, record, received, signal, facts), outcome: 'answered' };
}

function failure(state: DispatchState, err: unknown, record: RequestRecord, facts: RequestFacts): RouterResponse {
  if (err instanceof HttpError) return detailResponse(err.status, err.detail, { ...err.headers });
  // The error's name only: a message may quote the plaintext (a model's own error, JSON.parse's snippet).
  const name = err instanceof Error ? err.name : typeof err;
  state.emit({ level: 'error', message: `internal error (${name})`, fields: { method: record.method, path: facts.loggedPath, seq: record.seq, payload_id: facts.payloadId ?? undefined } });
  return detailResponse(500, 'internal server error');
}

/** Writes the response; a hook's invalid status or header value becomes a 500 instead of a crash. */
function send(state: DispatchState, res: ServerResponse, response: RouterResponse, start: number): { headers: Record<string, string>; response: RouterResponse } {
  // Draining: this connection takes no more requests.
  if (state.drain.draining) response.headers.Connection = 'close';
  try {
    return { headers: writeResponse(res, response, performance.now() - start), response };
  } catch (err) {
    if (res.headersSent) throw err;
    state.emit({ level: 'error', message: `unsendable response: ${(err as Error).message}` });
    const fallback = detailResponse(500, 'the server could not send the scripted response');
    return { headers: writeResponse(res, fallback, performance.now() - start), response: fallback };
  }
}

/**
 * Writes a streamed body to its end; a stream that could not end with its final record leaves the
 * connection closed. How it ended goes in `facts`; the body as sent, when requests are recorded.
 */
async function streamed(state: DispatchState, stream: NonNullable<RouterResponse['stream']>, res: ServerResponse, signal: AbortSignal, facts: RequestFacts, seq: number): Promise<{ outcome: ResponseRecord['outcome']; body: Uint8Array }> {
  const sent: string[] | undefined = state.log.keeping ? [] : undefined;
  const watch: StreamWatch = {
    written(text) {
      facts.bytesOut += text.length; // events are ASCII: base64, names, comments
      sent?.push(text);
    },
    firstRecord: () => facts.firstRecord(),
    // What its request's line carries to match it by: seq= in text, payload_id in JSON.
    fields: { seq, payload_id: facts.payloadId ?? undefined },
  };
  facts.streamed = true;
  const ended = state.metrics?.streamStarted();
  let outcome: StreamOutcome = 'aborted';
  try {
    outcome = await stream(res, signal, watch);
  } catch {
    res.destroy();
  } finally {
    facts.streamOutcome = outcome;
    ended?.(outcome);
  }
  // An error in the final record is still an answer: the client has it, sealed.
  return { outcome: outcome === 'aborted' ? 'aborted' : 'answered', body: sent ? new TextEncoder().encode(sent.join('')) : EMPTY };
}

/** `expectsContinue`: the request came with `Expect: 100-continue` (Node's 'checkContinue'), and waits to be told to send its body. */
export async function dispatch(state: DispatchState, req: IncomingMessage, res: ServerResponse, expectsContinue = false): Promise<void> {
  state.stats.requests++;
  const method = req.method ?? 'GET';
  const path = (req.url ?? '/').split(/[?#]/, 1)[0] ?? '/';
  const facts = new RequestFacts(method, path, req.headers);
  if (!admit(state, res, facts)) return;
  const underway = requestUnderway(res);
  let received: ReceivedBody;
  try {
    underway.reading = true;
    received = await receive(state, req, res, path, expectsContinue);
  } catch (err) {
    req.socket.destroy(); // the peer went away mid-body, or Node answered it (client-error.ts)
    // Still a request: its line and metrics say what it got (Node's 408, or dropped: status 0) and
    // the bytes that came.
    facts.bytesIn = err instanceof BodyCutOff ? err.received : 0;
    const status = underway.refusedWith ?? 0;
    if (status) state.stats.errors++;
    requestEnded(state, facts, status, status ? 'answered' : 'aborted');
    return;
  } finally {
    underway.reading = false;
  }
  facts.bytesIn = received.length;
  const start = performance.now();
  const record = state.log.add({ method, path, headers: req.headers, body: received.body.bytes, bodyLength: received.length });
  const controller = linkedController([state.closing]);
  whenRequestEnds(res, () => controller.abort(new Error('connection closed')));

  let decision: Decision;
  try {
    state.hooks.onRequest?.(record);
    decision = await decide(state, req, record, received, controller.signal, facts);
  } catch (err) {
    decision = !controller.signal.aborted
      ? { response: failure(state, err, record, facts), outcome: 'answered' }
      : isShutdown(controller.signal.reason) && !res.destroyed
        ? { response: detailResponse(503, SHUTTING_DOWN, { ...DRAIN_HEADERS }), outcome: 'aborted' }
        : { response: 'destroy', outcome: 'aborted' };
  } finally {
    // Handled: the request body can serve the next request (a secure completion gave it back itself,
    // once opened: releasing it again does nothing).
    received.body.release();
  }
  if (decision.response !== 'destroy' && res.destroyed) {
    decision.response.release?.();
    decision = { response: 'destroy', outcome: 'aborted' };
  }

  if (decision.response === 'destroy') {
    req.socket.destroy();
    record.response = { status: 0, headers: {}, body: EMPTY, processingMs: performance.now() - start, outcome: decision.outcome };
  } else {
    // A body left unread or cut off at the limit: Node would read it on, to its end, for the next
    // request on this connection. Closed instead, once this answer is written.
    if (received.unsent || received.overLimit) decision.response.headers.Connection = 'close';
    const sent = send(state, res, decision.response, start);
    if (!sent.response.stream) {
      cutOffWhenStalled(res, state.streaming.stallMs, () => state.emit({ level: 'warn', message: `a client took none of its answer for ${state.streaming.stallMs} ms: its connection was closed`, fields: { seq: record.seq, payload_id: facts.payloadId ?? undefined } }));
    }
    const status = sent.response.status;
    if (status >= 400) state.stats.errors++;
    if (!sent.response.stream) facts.bytesOut = sent.response.body.length;
    const { outcome, body } = sent.response.stream ? await streamed(state, sent.response.stream, res, controller.signal, facts, record.seq) : { outcome: decision.outcome, body: sent.response.body };
    record.response = { status, headers: sent.headers, body, processingMs: Number(sent.headers[PROCESSING_TIME_HEADER]), outcome };
  }
  controller.abort();
  requestEnded(state, facts, record.response.status, record.response.outcome, record.seq);
}
