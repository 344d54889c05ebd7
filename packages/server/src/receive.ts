/**
 * Which request bodies the router reads (body.ts), and which it refuses unread. Only a secure
 * completion's is taken, with the router's API key, up to the body limit. Any other body is never
 * read: its request is answered at once (401 without the API key, 413 for a declared length over
 * the limit or a route that takes no body) and its connection closed after the answer
 * (dispatch.ts), where reading it to its end would cost the time the client takes to send it (up to
 * the request timeout, and a `maxConcurrent` place all that time) and, on a kept-alive connection,
 * Node would read it all anyway before the next request. Clients read such an early answer (undici's
 * fetch, curl, nginx): the router stops reading, the client's sending stalls, and it reads the
 * answer before the connection closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PATHS } from '@nomyo/core/protocol';
import { noBody, readBody, unsentBody, type ReceivedBody } from './body.js';
import type { DispatchState } from './dispatch.js';
import type { HttpError } from './http-error.js';
import { authorize } from './request-headers.js';

/** `expectsContinue`: the request waits to be told to send its body (Expect: 100-continue). */
export async function receive(state: DispatchState, req: IncomingMessage, res: ServerResponse, path: string, expectsContinue: boolean): Promise<ReceivedBody> {
  const completion = path === PATHS.secureCompletion && req.method === 'POST';
  let refused: HttpError | undefined;
  try {
    if (completion) authorize(req.headers, state.apiKey);
  } catch (err) {
    refused = err as HttpError;
  }
  if (!hasBody(req)) return noBody(refused);
  const taken = completion && !refused;
  // A declared length is checked before a byte is read; a chunked body as it comes (body.ts).
  if (!taken || Number(req.headers['content-length'] ?? 0) > state.bodyLimit) return unsentBody(taken, refused);
  // A client that waits to be told to send its body (curl, for large ones) is told so only here,
  // where the body is wanted: refused, it sends none.
  if (expectsContinue) res.writeContinue();
  return readBody(req, state.bodyLimit, state.buffers.bodies);
}

/** Whether the request's framing announces a body (a chunked one, or a Content-Length above 0). */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
