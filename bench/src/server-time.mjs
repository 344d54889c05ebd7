/**
 * The reference server's own time for the last exchange (its X-Processing-Time-Ms header), read from
 * Node's fetch as it receives the headers (undici's diagnostics channel), so the client under test
 * keeps the runtime's own fetch: no fetch option, no replaced global, nothing in its path.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { PROCESSING_TIME_HEADER } from '@nomyo/server';

const CHANNEL = 'undici:request:headers';
const wanted = PROCESSING_TIME_HEADER.toLowerCase();
let serverMs = 0;

/** undici's raw headers: name, value, name, value… as bytes. */
function onHeaders({ response }) {
  const raw = response.headers;
  serverMs = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === wanted) serverMs = Number(String(raw[i + 1])) || 0;
  }
}

/** Starts recording; returns the function that stops it. */
export function watchServerTime() {
  subscribe(CHANNEL, onHeaders);
  return () => unsubscribe(CHANNEL, onHeaders);
}

/** The server's time (ms) in the last answer's headers; 0 when it gave none. */
export const lastServerMs = () => serverMs;
