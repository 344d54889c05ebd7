/** Building and writing the router's HTTP responses. Every one leaves through writeResponse, so CORS and timing are never missed. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { CORS_HEADERS } from './cors.js';
import { PROCESSING_TIME_HEADER } from './constants.js';
import type { StreamOutcome } from './answer-stream.js';
import type { InterceptAction, LogEvent } from './types.js';

/** An HTTP response of the router: status, headers, body (and how to give the body's buffer back). */
export interface RouterResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  /** Gives the buffer behind `body` back to its pool once it is written out. */
  release?: () => void;
  /**
   * A body written as it is made (a streamed answer; `body` is then empty): called once the headers
   * are out, with the request's signal (aborted when the client goes away, or at the drain deadline)
   * and `watch`, told what is written. Says how it ended.
   */
  stream?: (res: ServerResponse, signal: AbortSignal, watch: StreamWatch) => Promise<StreamOutcome>;
}

/** What a streamed body tells as it is written (the request log's copy, the byte count, the time to the first record), and its request's log fields. */
export interface StreamWatch {
  /** Each piece of text written, heartbeats included. */
  written(text: string): void;
  /** Once, as the first record (or the final record, when there is none) is written. */
  firstRecord(): void;
  /** The request's log fields, for a line the stream logs of it: what matches it with its request's line. */
  readonly fields: NonNullable<LogEvent['fields']>;
}

const encoder = new TextEncoder();

export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): RouterResponse {
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body: encoder.encode(JSON.stringify(value)) };
}

export function detailResponse(status: number, detail: string, headers: Record<string, string> = {}): RouterResponse {
  return jsonResponse(status, { detail }, headers);
}

export function textResponse(status: number, text: string, contentType = 'text/plain; charset=utf-8'): RouterResponse {
  return { status, headers: { 'Content-Type': contentType }, body: encoder.encode(text) };
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name.toLowerCase());
}

/** The response a test's InterceptAction describes: raw strings and bytes, JSON for anything else. */
export function interceptResponse(action: InterceptAction & { status: number }): RouterResponse {
  const headers = { ...action.headers };
  const { body } = action;
  if (body === undefined) return detailResponse(action.status, STATUS_CODES[action.status] ?? 'error', headers);
  if (typeof body === 'string' || body instanceof Uint8Array) {
    if (!hasHeader(headers, 'content-type')) headers['Content-Type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
    return { status: action.status, headers, body: typeof body === 'string' ? encoder.encode(body) : body };
  }
  return jsonResponse(action.status, body, headers);
}

/**
 * Writes the response with CORS, length and processing-time headers; returns the headers sent. A
 * streamed body has no length; its headers leave with its first event, which the stream writes at
 * once (one packet, not two: the client waits for both).
 */
export function writeResponse(res: ServerResponse, response: RouterResponse, processingMs: number): Record<string, string> {
  const headers: Record<string, string> = {
    ...CORS_HEADERS,
    ...response.headers,
    'Content-Length': String(response.body.length),
    [PROCESSING_TIME_HEADER]: processingMs.toFixed(3),
  };
  if (response.stream) {
    delete headers['Content-Length'];
    res.writeHead(response.status, headers);
    return headers;
  }
  // 204 and 304 must not carry a body (nor, strictly, a length).
  if (response.status === 204 || response.status === 304) delete headers['Content-Length'];
  res.writeHead(response.status, headers);
  if (response.status === 204 || response.status === 304) {
    res.end();
    response.release?.();
  } else {
    // Written from the buffer as it is (no copy): it goes back only once the socket has taken it all.
    res.end(response.body, response.release);
  }
  return headers;
}

/**
 * A whole answer whose client stops taking it: past `stallMs` in which the socket took none of what
 * waits for it, the connection is closed, as a stream's is, and `onStall` told; else it held its
 * answer's buffer and its request's place for as long as the client liked. A slow client that
 * keeps taking is never cut off. Not for a response queued behind another on its connection (it
 * has no socket yet): that one ends when its connection does.
 */
export function cutOffWhenStalled(res: ServerResponse, stallMs: number, onStall: () => void): void {
  const socket = res.socket;
  if (stallMs <= 0 || !socket || res.writableFinished) return;
  let waiting = socket.writableLength;
  const timer = setInterval(() => {
    if (res.writableFinished || socket.destroyed) return void clearInterval(timer);
    if (socket.writableLength < waiting) return void (waiting = socket.writableLength);
    clearInterval(timer);
    onStall();
    res.destroy();
  }, stallMs);
  timer.unref();
  res.once('close', () => clearInterval(timer));
}
