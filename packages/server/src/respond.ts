/** Building and writing answers. Every answer leaves through writeAnswer, so CORS and timing are never missed. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { CORS_HEADERS } from './cors.js';
import { PROCESSING_TIME_HEADER } from './constants.js';
import type { InterceptAction } from './types.js';

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  /** Gives the buffer behind `body` back to its pool once it is written out. */
  release?: () => void;
}

const encoder = new TextEncoder();

export function jsonAnswer(status: number, value: unknown, headers: Record<string, string> = {}): Answer {
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body: encoder.encode(JSON.stringify(value)) };
}

export function detailAnswer(status: number, detail: string, headers: Record<string, string> = {}): Answer {
  return jsonAnswer(status, { detail }, headers);
}

export function textAnswer(status: number, text: string, contentType = 'text/plain; charset=utf-8'): Answer {
  return { status, headers: { 'Content-Type': contentType }, body: encoder.encode(text) };
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name.toLowerCase());
}

/** The answer a test's InterceptAction describes: raw strings and bytes, JSON for anything else. */
export function interceptAnswer(action: InterceptAction & { status: number }): Answer {
  const headers = { ...action.headers };
  const { body } = action;
  if (body === undefined) return detailAnswer(action.status, STATUS_CODES[action.status] ?? 'error', headers);
  if (typeof body === 'string' || body instanceof Uint8Array) {
    if (!hasHeader(headers, 'content-type')) headers['Content-Type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
    return { status: action.status, headers, body: typeof body === 'string' ? encoder.encode(body) : body };
  }
  return jsonAnswer(action.status, body, headers);
}

/** Writes the answer with CORS, length and processing-time headers; returns the headers sent. */
export function writeAnswer(res: ServerResponse, answer: Answer, processingMs: number): Record<string, string> {
  const headers: Record<string, string> = {
    ...CORS_HEADERS,
    ...answer.headers,
    'Content-Length': String(answer.body.length),
    [PROCESSING_TIME_HEADER]: processingMs.toFixed(3),
  };
  // 204 and 304 must not carry a body (nor, strictly, a length).
  if (answer.status === 204 || answer.status === 304) delete headers['Content-Length'];
  res.writeHead(answer.status, headers);
  if (answer.status === 204 || answer.status === 304) {
    res.end();
    answer.release?.();
  } else {
    // Written from the buffer as it is (no copy): it goes back only once the socket has taken it all.
    res.end(answer.body, answer.release);
  }
  return headers;
}
