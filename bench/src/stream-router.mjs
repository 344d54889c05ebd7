/**
 * The reference router for `pnpm bench stream`, in a process of its own: `startServer` from
 * @nomyo/server with an upstream and the vector key (what `nomyo-server --upstream URL --key-file
 * server_4096.pem` runs), and what the bench asks of it over IPC, measured in the router's process:
 *
 * - `reset`: a full collection, the peak RSS reset to the current RSS (Linux: /proc clear_refs), the
 *   baseline and the CPU time read, the counters cleared;
 * - `stats`: since then, the records written (`data:` events), their bytes and those of the other
 *   events, the shared-clock time of the first record and of the last, the peak RSS added (when the
 *   10,000th, 50,000th and 100,000th record went, and now) and the V8 heap's growth (at the same
 *   records), the CPU time used; and the moments of
 *   the last secure completion: its request's headers in, its response's headers, its header event
 *   and its first records out;
 * - `writes` (`keep`: go on recording): the time of every record written, per stream (payload id),
 *   since the last `writes`;
 * - `rsa`: one RSA-OAEP (SHA-256) decryption of a 32-byte key with the router's 4096-bit key, as
 *   the router makes it (crypto.subtle.decrypt), timed;
 * - `clock`: this process's shared clock (see sse-upstream.mjs clockOffset).
 *
 * What the router writes is seen where it hands it to Node: ServerResponse.prototype.write and
 * writeHead are wrapped (a string compare, a counter and a clock reading per write; nothing is
 * copied, and no rest-parameter array made: the wrapper's own garbage would count in the router's
 * collections), and Server.prototype.emit for the requests' arrival.
 */
import { Server, ServerResponse } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { startServer } from '@nomyo/server';
import { HEADERS, PATHS, STREAM_EVENTS, pemToDer } from '@nomyo/core/protocol';
import { SERVER_KEY } from './server-process.mjs';

const clock = () => performance.timeOrigin + performance.now();
const RSS_MARKS = [10_000, 50_000, 100_000];
const HEADER_EVENT = `event: ${STREAM_EVENTS.header}\n`;
const PAYLOAD_ID = HEADERS.payloadId.toLowerCase();

function status(field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

let base = 0;
let baseHeap = 0;
let cpu = process.cpuUsage();
let counts = fresh();
let marks = {};
/** Each stream's record writes, by payload id, while recorded. */
let writes;

function fresh() {
  return { records: 0, bytes: 0, otherBytes: 0, first: 0, last: 0, peaks: {}, heaps: {} };
}

const emit = Server.prototype.emit;
Server.prototype.emit = function (name, req, ...rest) {
  if (name === 'request' && req.url === PATHS.secureCompletion) marks = { request: clock(), records: [] };
  return emit.call(this, name, req, ...rest);
};

const writeHead = ServerResponse.prototype.writeHead;
ServerResponse.prototype.writeHead = function (...args) {
  marks.headers ??= clock();
  return writeHead.apply(this, args);
};

const write = ServerResponse.prototype.write;
ServerResponse.prototype.write = function (chunk, encoding, callback) {
  if (typeof chunk === 'string' && chunk.startsWith('data: ')) {
    const at = clock();
    if (counts.records++ === 0) counts.first = at;
    counts.last = at;
    counts.bytes += chunk.length;
    if (marks.records?.length < 3) marks.records.push(at);
    if (RSS_MARKS.includes(counts.records)) {
      counts.peaks[counts.records] = status('VmHWM') - base;
      counts.heaps[counts.records] = process.memoryUsage().heapTotal - baseHeap;
    }
    if (writes) {
      const id = this.req?.headers[PAYLOAD_ID];
      const list = writes.get(id) ?? [];
      if (list.length === 0) writes.set(id, list);
      list.push(at);
    }
  } else if (typeof chunk === 'string') {
    if (chunk.startsWith(HEADER_EVENT)) marks.headerEvent = clock();
    counts.otherBytes += chunk.length;
  }
  return write.call(this, chunk, encoding, callback);
};

/** The router's key, and a 32-byte key wrapped to it, as a v2 request's `K` is. */
async function rsaKey(publicKeyPem) {
  const oaep = { name: 'RSA-OAEP', hash: 'SHA-256' };
  const privateKey = await crypto.subtle.importKey('pkcs8', pemToDer(readFileSync(SERVER_KEY, 'utf8'), 'PRIVATE KEY'), oaep, false, ['decrypt']);
  const publicKey = await crypto.subtle.importKey('spki', pemToDer(publicKeyPem, 'PUBLIC KEY'), oaep, false, ['encrypt']);
  return { privateKey, wrapped: await crypto.subtle.encrypt(oaep, publicKey, crypto.getRandomValues(new Uint8Array(32))) };
}

async function main(upstream) {
  // The router's own warnings; not its request lines (a bench client that stops at its first token
  // cuts its stream off, which the router logs as a warning every round).
  const onLog = (event) => event.level !== 'info' && !event.request && process.stderr.write(`router: ${event.level} ${event.message}\n`);
  const server = await startServer({ port: 0, host: '127.0.0.1', keyFile: SERVER_KEY, upstream, onLog });
  const rsa = await rsaKey(server.publicKeyPem);
  process.on('message', async (msg) => {
    if (msg.type === 'reset') {
      globalThis.gc?.();
      writeFileSync('/proc/self/clear_refs', '5');
      base = status('VmRSS');
      baseHeap = process.memoryUsage().heapTotal;
      cpu = process.cpuUsage();
      counts = fresh();
      process.send({ type: 'reset' });
    } else if (msg.type === 'stats') {
      const used = process.cpuUsage(cpu);
      process.send({ type: 'stats', ...counts, peak: status('VmHWM') - base, cpuMs: (used.user + used.system) / 1000, marks });
    } else if (msg.type === 'writes') {
      process.send({ type: 'writes', streams: writes ? Object.fromEntries(writes) : {} });
      writes = msg.keep ? new Map() : undefined;
    } else if (msg.type === 'rsa') {
      const t0 = performance.now();
      await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, rsa.privateKey, rsa.wrapped);
      process.send({ type: 'rsa', ms: performance.now() - t0 });
    } else if (msg.type === 'clock') process.send({ type: 'clock', at: clock() });
  });
  const stop = () => server.close().then(() => process.exit(0));
  process.once('disconnect', stop);
  process.once('SIGTERM', stop);
  console.log(`listening on ${server.url}`);
}

await main(process.argv[2]);
