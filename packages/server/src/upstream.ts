/**
 * Forwarding to an OpenAI-compatible upstream: `POST {base}/chat/completions` with the decrypted
 * request. Upstream failures become safe router errors. A 4xx (but 401) is an UpstreamError: its
 * message repeats the request, so it travels sealed to a v2 client and never in the clear (status
 * 400, or 429 with its Retry-After, and a generic detail). A 401 is the router's own credentials
 * failing (502); a 503 is 503 with its Retry-After, another 5xx 502, an unreachable upstream 503
 * (one that broke off once it had the request 502), one that sends nothing for `timeoutMs`
 * (before its first byte, or between two pieces of its body) 504, each with our own text only.
 * A request with `stream: true` is forwarded as it is: an event stream comes back as chunks
 * (upstream-stream.ts), a whole completion as it is. The call goes through undici's `request`, with
 * kept-alive connections: fetch's web streams cost a streamed answer time on every token.
 */
import { EVENT_STREAM_CONTENT_TYPE, MAX_ANSWER_BODY_BYTES, MAX_ANSWER_DEPTH, STREAM_ACCEPT, jsonNestingExceeds } from '@nomyo/core/protocol';
import { jsonBytes, linkedController } from '@nomyo/core/internal';
import { getGlobalDispatcher, type Dispatcher } from 'undici';
import { HttpError, UpstreamError, nestedTooDeep } from './http-error.js';
import { retryAfterHeader, upstreamError } from './upstream-error.js';
import { upstreamChunks } from './upstream-stream.js';
import type { ChatRequest, CompletionModel, ModelContext, UpstreamReport } from './types.js';
import { MIB } from './constants.js';

export interface UpstreamOptions {
  baseUrl: string;
  apiKey: string | undefined;
  /** Until the upstream's first byte (its response headers); after that, the longest silence between two pieces of its body. */
  timeoutMs: number;
}

const EVENT_STREAM = EVENT_STREAM_CONTENT_TYPE.split(';')[0]!;
/** The largest whole answer read: sealed, its base64 makes it 4/3 as large, within what a client reads (MAX_ANSWER_BODY_BYTES). */
const MAX_UPSTREAM_ANSWER_BYTES = (MAX_ANSWER_BODY_BYTES / 4) * 3;
/**
 * The most of an upstream's error body read: enough for the JSON of an error whose message quotes a
 * long input (its `type` and `code` are lost when it is cut), never the body of one that sends without end.
 */
const MAX_UPSTREAM_ERROR_BYTES = MIB;
function timedOut(signal: AbortSignal): boolean {
  return (signal.reason as Error | undefined)?.name === 'TimeoutError';
}

type UpstreamResponse = Dispatcher.ResponseData;

/** Where the chat completions of an upstream are: its origin and path, parsed once. */
interface Endpoint {
  origin: string;
  path: string;
}

/**
 * The upstream's response (its headers): failures to reach it are safe router errors. Through the
 * global dispatcher (as undici's `request` goes: a dispatcher the process sets, a proxy, applies),
 * with the URL parsed once: `request(url)` parsing it on every call cost a request 0.1 ms of the
 * 0.4 ms undici took to write it, in a process back from idle (docs/performance.md).
 */
async function callUpstream(endpoint: Endpoint, headers: Record<string, string>, body: Uint8Array, signal: AbortSignal, report: UpstreamReport): Promise<UpstreamResponse> {
  try {
    // Our own timers bound the call (`timeoutMs`, and a body's silences): none of undici's.
    return await getGlobalDispatcher().request({ ...endpoint, method: 'POST', headers, body, signal, headersTimeout: 0, bodyTimeout: 0 });
  } catch (err) {
    if (timedOut(signal)) {
      report.failure = 'timeout';
      throw new HttpError(504, 'inference backend timed out');
    }
    // Aborted by the caller going away or the drain: nothing failed upstream.
    if (!signal.aborted) report.failure = 'connection';
    // Never reached, the request did nothing: 503, which clients and nginx retry. A connection that
    // broke after the request went out may have had the model run it: 502, which nobody retries.
    if (neverConnected(err)) throw new HttpError(503, 'inference backend unavailable');
    throw new HttpError(502, 'inference backend closed the connection before answering');
  }
}

/** The errors of a connection that was never made (refused, no such host, no route, its connect timed out). */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function neverConnected(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code ?? (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return typeof code === 'string' && NOT_CONNECTED.has(code);
}

/**
 * A whole body's text, each silence of it bounded by `idleMs` (the timer aborts `controller`), and
 * its size by `maxBytes`: an answer over it is a 502 (a client would refuse it sealed), and an error's
 * text is cut there (only its first words reach anyone). An upstream that sends without end no longer
 * grows the router's memory without end (556 MiB before it was stopped, in a review).
 */
async function readText(res: UpstreamResponse, controller: AbortController, idleMs: number, report: UpstreamReport, maxBytes: number): Promise<string> {
  const pieces: Buffer[] = [];
  let length = 0;
  const arm = () => setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), idleMs);
  let timer = arm();
  try {
    for await (const piece of res.body) {
      pieces.push(piece as Buffer);
      length += (piece as Buffer).length;
      if (length > maxBytes) break; // the body is destroyed: no more of it is read
      clearTimeout(timer);
      timer = arm();
    }
  } catch {
    if (timedOut(controller.signal)) report.failure = 'timeout';
    else if (!controller.signal.aborted) report.failure = 'connection';
    throw new HttpError(timedOut(controller.signal) ? 504 : 502, 'inference backend sent an incomplete response');
  } finally {
    clearTimeout(timer);
  }
  if (length > maxBytes && res.statusCode === 200) {
    report.failure = 'malformed';
    throw new HttpError(502, `the inference backend sent an answer over ${maxBytes / MIB} MiB`);
  }
  return Buffer.concat(pieces, Math.min(length, maxBytes)).toString('utf8');
}

/** A response header's one value (undici gives a repeated header as an array). */
function header(res: UpstreamResponse, name: string): string | null {
  const value = res.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** A non-200 response as the error it is; the upstream's own text only ever inside an UpstreamError. */
function refusal(status: number, retryAfter: string | null, text: string): HttpError {
  // A 401 from upstream is the router's own key failing, not the caller's: passing it through
  // would tell the caller its API key is wrong.
  if (status === 401) return new HttpError(502, 'inference backend refused the router credentials');
  if (status === 429) return new UpstreamError(429, 'the inference backend is rate limiting (4xx)', upstreamError(text, status), retryAfterHeader(retryAfter));
  if (status >= 400 && status < 500) return new UpstreamError(400, 'the inference backend refused the request (4xx)', upstreamError(text, status));
  // Overloaded or not ready: it did nothing with the request, which may come back when it says.
  if (status === 503) return new HttpError(503, 'inference backend unavailable (503)', retryAfterHeader(retryAfter));
  return new HttpError(502, `inference backend error (${status})`);
}

export function upstreamModel(options: UpstreamOptions): CompletionModel {
  const url = new URL(`${options.baseUrl.replace(/\/+$/, '')}/chat/completions`);
  const endpoint: Endpoint = { origin: url.origin, path: url.pathname + url.search };
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;
  const streamHeaders = { ...headers, Accept: STREAM_ACCEPT };

  return async (request: ChatRequest, context: ModelContext): Promise<unknown> => {
    // The tier is a router concern; a stray field from an old client must not reach the backend.
    const { security_tier: _tier, ...forwarded } = request;
    const streams = request.stream === true;
    // Follows the caller (a client that goes away cancels the upstream request); the timer covers the
    // time until the upstream's first byte, then each silence of its body.
    const report = context.upstream ?? {};
    const controller = linkedController([context.signal]);
    const timer = setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), options.timeoutMs);
    // The plaintext request as bytes, long strings written straight in (a 10 MiB document makes no
    // 10 MiB JSON string), zeroed once the upstream has answered, which a string could not be.
    const body = jsonBytes(forwarded);
    let handedOn = false;
    try {
      const res = await callUpstream(endpoint, streams ? streamHeaders : headers, body, controller.signal, report);
      clearTimeout(timer);
      report.status = res.statusCode;
      const isStream = (header(res, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase() === EVENT_STREAM;
      if (res.statusCode === 200 && isStream) {
        if (!streams) {
          report.failure = 'malformed';
          // Not read: the abort below errors it, and an error nobody listens for ends the process.
          res.body.on('error', () => {}).destroy();
          throw new HttpError(502, 'the inference backend streamed an answer that was not asked for');
        }
        handedOn = true;
        return upstreamChunks(res.body, controller, options.timeoutMs, report);
      }
      const text = await readText(res, controller, options.timeoutMs, report, res.statusCode === 200 ? MAX_UPSTREAM_ANSWER_BYTES : MAX_UPSTREAM_ERROR_BYTES);
      if (res.statusCode !== 200) {
        report.failure = 'status';
        throw refusal(res.statusCode, header(res, 'retry-after'), text);
      }
      // The client refuses an answer nested deeper (a caller's JSON.stringify recurses): the
      // upstream's fault, said as such.
      if (jsonNestingExceeds(text, MAX_ANSWER_DEPTH)) {
        report.failure = 'malformed';
        throw new HttpError(502, nestedTooDeep('an answer'));
      }
      try {
        return JSON.parse(text) as unknown;
      } catch {
        report.failure = 'malformed';
        throw new HttpError(502, 'inference backend sent a response that is not JSON');
      }
    } finally {
      clearTimeout(timer);
      body.fill(0);
      // Releases the links to the caller's signal; no more of the body is sent. A stream keeps it.
      if (!handedOn) controller.abort();
    }
  };
}
