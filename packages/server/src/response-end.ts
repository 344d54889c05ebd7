/**
 * When a request is over, for everything that holds something until then (a `maxConcurrent` place,
 * the drain's count, the in-flight gauge, the request's abort). A response's 'close' says so,
 * except for a pipelined request whose response waits behind an earlier one on its connection:
 * when that connection dies, Node emits no 'close' for the waiting response, so its socket's
 * 'close' ends it too. Without it, a client that pipelined requests and reset the connection kept
 * their places for good.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The ends still waiting on each connection: one listener a connection, however many requests it pipelines. */
const waiting = new WeakMap<Socket, Set<() => void>>();

/** Calls `done` once, when the response ends or its connection closes, whichever comes first. */
export function whenRequestEnds(res: ServerResponse, done: () => void): void {
  const socket = res.req.socket;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    waiting.get(socket)?.delete(end);
    done();
  };
  res.once('close', end);
  if (socket.closed) return void queueMicrotask(end);
  let ends = waiting.get(socket);
  if (!ends) {
    const set = new Set<() => void>();
    waiting.set(socket, set);
    socket.once('close', () => {
      for (const f of [...set]) f();
    });
    ends = set;
  }
  ends.add(end);
}
