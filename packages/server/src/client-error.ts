/**
 * Node's own refusals, which come as the server's 'clientError': a request it cannot parse (400),
 * headers over its limit (431), a chunk extension too large (413), and the headers or request
 * timeout (408). Without a handler Node answers them itself, and nobody learns of it; this one
 * answers as Node does (a minimal response, only where the socket can take one and no response on
 * it has begun, then the connection destroyed) and tells of it: a request whose body was being read
 * ends with that status on its own line (dispatch.ts); anything else gets a line of its own and
 * counts in nomyo_requests_total (protocol "none"). Its status and Node's error code only: never
 * what the client sent (`err.rawPacket` holds it).
 */
import { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DispatchState } from './dispatch.js';
import { whenRequestEnds } from './response-end.js';

/** A request under way on its connection; `reading` while its body is read, `refusedWith` what Node refused it with meanwhile. */
export interface Underway {
  readonly res: ServerResponse;
  reading: boolean;
  refusedWith?: number;
}

/** The requests under way on each connection (several when pipelined). */
const underway = new WeakMap<Duplex, Set<Underway>>();

/** Registers the request of `res` until it ends. */
export function requestUnderway(res: ServerResponse): Underway {
  const socket = res.req.socket;
  const entry: Underway = { res, reading: false };
  let requests = underway.get(socket);
  if (!requests) underway.set(socket, (requests = new Set()));
  const own = requests;
  own.add(entry);
  whenRequestEnds(res, () => own.delete(entry));
  return entry;
}

/** Node's status for each refusal (`socketOnError` in its lib/_http_server.js); 400 for any other. */
const STATUS_OF: Readonly<Record<string, number>> = { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413, ERR_HTTP_REQUEST_TIMEOUT: 408 };

const PEER_GONE = new Set(['ECONNRESET', 'HPE_INVALID_EOF_STATE']);

export function answerClientErrors(server: Server, state: DispatchState): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const requests = [...(underway.get(socket) ?? [])];
    const code = err.code ?? 'unknown';
    // A peer that reset its connection, or ended it mid-request (EOF), is gone: a client that
    // abandoned its upload is dropped, not refused. A response already begun must not be corrupted.
    const answered = !PEER_GONE.has(code) && socket.writable && !requests.some((r) => r.res.headersSent);
    const status = STATUS_OF[code] ?? 400;
    if (answered) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
    if (!answered) return; // the requests under way end as dropped, each on its line
    const reading = requests.find((r) => r.reading);
    if (reading) return void (reading.refusedWith = status);
    state.stats.errors++;
    state.metrics?.refusedByNode(status);
    state.emit({ level: 'info', message: `client error ${status}`, fields: { status, code } });
  });
}
