/**
 * A streaming OpenAI-compatible upstream for `pnpm bench stream` (and `pnpm bench router`, which asks
 * for whole answers: see {@link whole}), in a process of its own (its CPU
 * is not the client's nor the router's): POST /v1/chat/completions with `stream: true` answers with
 * chat.completion.chunk SSE events shaped as api.openai.com sends them, one word each, then
 * `data: [DONE]`. The request's `model` says what to stream (see {@link plan}), so the NOMYO client
 * (through the router) and the openai SDK (directly) ask for the same thing the same way.
 *
 * Every chunk's `id` carries the time it was written, in microseconds on the shared clock
 * (`performance.timeOrigin + performance.now()`, which every process of this machine reads alike:
 * see {@link clockOffset}), so a client can tell each token's delay from emission to arrival. The id
 * keeps the length of a real one ("chatcmpl-" and 29 characters).
 */
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';

/** The shared clock, in ms. */
export const clock = () => performance.timeOrigin + performance.now();

/** One-word tokens as a tokenizer cuts English prose: most with their leading space. */
export const WORDS = [' The', ' model', ' reads', ' the', ' question', ',', ' thinks', ' about', ' it', ' and', ' answers', ' in', ' a', ' few', ' short', ' words', '.', ' It'];

/**
 * What a request's `model` asks for: `bench tokens=N delay=MS phase=MS`. `tokens` content chunks
 * follow the role chunk; with a `delay`, the first at the next point of a grid of `delay` ms (offset by
 * `phase`) on the shared clock, one a grid point after it, so streams of different phases never
 * write at the same moment; without one, all at once (each waits only for the socket to take it).
 */
export function plan(model) {
  const field = (name, fallback) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(model)?.[1] ?? fallback);
  return { tokens: field('tokens', 10), delay: field('delay', 0), phase: field('phase', 0) };
}

export const benchModel = (tokens, delay = 0, phase = 0) => `bench tokens=${tokens} delay=${delay} phase=${phase}`;

/** A chunk's JSON as api.openai.com writes it (key order, system_fingerprint, logprobs), `id` stamped with `at`. */
export function chunkJson(at, delta, finish = null) {
  const id = `chatcmpl-${String(Math.round(at * 1000)).padStart(29, '0')}`;
  return `{"id":"${id}","object":"chat.completion.chunk","created":1733480000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1",` +
    `"choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}`;
}

/** The emission time (shared clock, ms) a chunk's id carries. */
export const stampOf = (chunk) => Number(chunk.id.slice(9)) / 1000;

const DONE = 'data: [DONE]\n\n';

/**
 * The last request: when it arrived, when its first content token was written (shared clock), and
 * the chunk events sent (`data: {json}\n\n`, as written: role, content and finish chunks) and their bytes.
 */
let last = { arrival: 0, firstToken: 0, events: 0, bytes: 0 };

async function stream(res, { tokens, delay, phase }, sent) {
  let closed = false;
  res.once('close', () => (closed = true));
  const write = (text) => {
    if (res.write(text)) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  };
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  const event = (delta, finish) => {
    const text = `data: ${chunkJson(clock(), delta, finish)}\n\n`;
    sent.events++;
    sent.bytes += text.length;
    return text;
  };
  await write(event({ role: 'assistant', content: '' }));
  // At least one period from now, so a stream always starts on the grid.
  let next = delay ? (Math.ceil((clock() + delay - phase) / delay) * delay) + phase : 0;
  for (let i = 0; i < tokens; i++) {
    if (delay) {
      const wait = next - clock();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      next += delay;
    }
    if (closed) return;
    if (i === 0) sent.firstToken = clock();
    await write(event({ content: WORDS[i % WORDS.length] }));
  }
  await write(event({}, 'stop'));
  res.end(DONE);
}

/**
 * Without `stream: true` (`pnpm bench router`): a chat.completion as api.openai.com writes it, whose
 * content is the last message's, so an answer is as large as its request.
 */
function whole(res, request) {
  const content = String(request.messages?.at(-1)?.content ?? '');
  const body = `{"id":"chatcmpl-${'0'.repeat(29)}","object":"chat.completion","created":1733480000,"model":"gpt-4o-mini-2024-07-18",` +
    `"choices":[{"index":0,"message":{"role":"assistant","content":${JSON.stringify(content)},"refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
    `"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"system_fingerprint":"fp_0ba0d124f1"}`;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function serve() {
  const server = http.createServer((req, res) => {
    const sent = { arrival: clock(), firstToken: 0, events: 0, bytes: 0 };
    const parts = [];
    req.on('data', (part) => parts.push(part)).on('end', () => {
      let request;
      try {
        request = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return res.writeHead(400).end();
      }
      if (req.url !== '/v1/chat/completions') return res.writeHead(404).end();
      last = sent;
      if (request.stream !== true) return whole(res, request);
      stream(res, plan(String(request.model)), sent).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}/v1`));
  process.on('message', (msg) => {
    if (msg.type === 'clock') process.send({ type: 'clock', at: clock() });
    else if (msg.type === 'last') process.send({ type: 'last', ...last });
    else if (msg.type === 'cpu') process.send({ type: 'cpu', ...process.cpuUsage() });
  });
  process.once('disconnect', () => process.exit(0));
}

/**
 * Starts a child process with an IPC channel whose first stdout line is `listening on URL`; returns
 * its URL, its pid, `ask(type, fields)` (a request over IPC, resolving to the answer of that type)
 * and `close()`.
 */
export async function startChild(script, args = [], nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const url = await new Promise((resolve, reject) => {
    child.stdout.once('data', (line) => {
      const m = /^listening on (\S+)/.exec(String(line));
      m ? resolve(m[1]) : reject(new Error(`${script} did not start: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  // One request of a type at a time: answers come back in order.
  const ask = (type, fields = {}) => new Promise((resolve) => {
    const on = (msg) => {
      if (msg.type !== type) return;
      child.off('message', on);
      resolve(msg);
    };
    child.on('message', on);
    child.send({ type, ...fields });
  });
  return { url, pid: child.pid, ask, close: () => new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGTERM'))) };
}

/**
 * How far `child`'s shared clock is ahead of ours, in ms: the reading of the IPC round trip that
 * took least time, taken at its middle (as NTP does), with that round trip's half as its error.
 */
export async function clockOffset(child, tries = 50) {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < tries; i++) {
    const t0 = clock();
    const { at } = await child.ask('clock');
    const t1 = clock();
    if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: at - (t0 + t1) / 2 };
  }
  return { offset: best.offset, error: best.rtt / 2 };
}

export const startUpstream = () => startChild(fileURLToPath(import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
