/**
 * What an intermediary that sees the stream (a TLS-terminating proxy on loopback, in front of the
 * reference router) can try against a streamed answer, and what the client makes of it: every change
 * ends in the right typed error, after exactly the chunks whose records arrived untouched, with
 * nothing delivered after it. Cutting the stream, appending events, rewriting the `event:` lines,
 * dropping, reordering or repeating records, replaying an earlier stream, and streaming to a request
 * that did not ask for a stream.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SecurityError, StreamTruncatedError, type ChatCompletionChunk } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import type { ProxiedAnswer } from './proxy.js';
import { clientFor, routerBehindProxy, startTestServer } from './support.js';

const WORDS = 'alpha beta gamma delta';
const ask = () => ({ model: 'm', messages: [{ role: 'user', content: WORDS }], stream: true as const });
const askWhole = () => ({ model: 'm', messages: [{ role: 'user', content: WORDS }] });
// The echo model's chunks: the role, "echo: ", then one per word, then the finish.
const CONTENTS = ['', 'echo: ', 'alpha ', 'beta ', 'gamma ', 'delta', ''];

const setup = routerBehindProxy();
const viaProxy = () => clientFor({ url: setup.proxy.url } as NomyoServer, { maxRetries: 0 });

const kind = (err: unknown) => (err instanceof StreamTruncatedError ? 'truncated' : err instanceof SecurityError ? 'security' : `unexpected ${String(err)}`);

/**
 * Reads the stream to its end: the contents delivered, how it ended, and that nothing came after an
 * error. A stream that fails before it starts (create() rejects) delivered nothing.
 */
async function outcome(created: Promise<AsyncIterable<ChatCompletionChunk>>): Promise<{ contents: string[]; end: string }> {
  let stream: AsyncIterable<ChatCompletionChunk>;
  try {
    stream = await created;
  } catch (err) {
    return { contents: [], end: kind(err) };
  }
  const iterator = stream[Symbol.asyncIterator]();
  const contents: string[] = [];
  try {
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) contents.push(next.value.choices[0]?.delta.content ?? '');
    return { contents, end: 'normal' };
  } catch (err) {
    expect((await iterator.next()).done).toBe(true);
    return { contents, end: kind(err) };
  }
}

/** The events of a stream body (each with its blank line), and the body made of some of them. */
const eventsOf = (body: Buffer) => body.toString('latin1').split(/(?<=\n\n)/);
const bodyOf = (events: string[]) => Buffer.from(events.join(''), 'latin1');

/** Rewrites the next streamed answer's events. */
function rewrite(change: (events: string[]) => string[]): void {
  setup.proxy.hooks = {
    answer: (answer: ProxiedAnswer, request) => {
      if (request.method === 'POST' && /event-stream/.test(String(answer.headers['content-type']))) answer.body = bodyOf(change(eventsOf(answer.body)));
    },
  };
}

beforeEach(() => {
  setup.proxy.hooks = {};
});

describe('a proxy that changes the stream', () => {
  it('untouched, the stream ends normally with every chunk (the baseline the cases below depart from)', async () => {
    rewrite((events) => events);
    expect(await outcome(viaProxy().create(ask()))).toEqual({ contents: CONTENTS, end: 'normal' });
  });

  // Events: 0 is the header, 1..7 the records (role, "echo: ", four words, finish), 8 the final record.
  // An event of the wrong kind before the first record fails create() itself: nothing delivered.
  it.each([
    ['appends a record after the final one', (e: string[]) => [...e, e[3]!], CONTENTS, 'security'],
    ['appends a [DONE] after the final one', (e: string[]) => [...e, 'data: [DONE]\n\n'], CONTENTS, 'security'],
    ['appends a comment and a blank line only (harmless)', (e: string[]) => [...e, ': bye\n\n'], CONTENTS, 'normal'],
    ['appends a line without its line end after the final one', (e: string[]) => [...e, 'data: AAAA'], CONTENTS, 'security'],
    ['appends an event without its blank line after the final one', (e: string[]) => [...e, `event: nomyo-final\n${e.at(-1)!.split('\n')[1]}\n`], CONTENTS, 'security'],
    ['renames the final record a record', (e: string[]) => [...e.slice(0, -1), e.at(-1)!.replace('event: nomyo-final\n', '')], CONTENTS, 'security'],
    ['names a record the final one', (e: string[]) => [...e.slice(0, 3), `event: nomyo-final\n${e[3]}`, ...e.slice(4)], CONTENTS.slice(0, 2), 'security'],
    ['renames the header', (e: string[]) => [e[0]!.replace('nomyo-stream', 'message'), ...e.slice(1)], [], 'security'],
    ['adds an event of another name', (e: string[]) => [...e.slice(0, 2), 'event: ping\ndata: {}\n\n', ...e.slice(2)], CONTENTS.slice(0, 1), 'security'],
    ['sends a second header', (e: string[]) => [...e.slice(0, 2), e[0]!, ...e.slice(2)], CONTENTS.slice(0, 1), 'security'],
    ['drops a record', (e: string[]) => [...e.slice(0, 3), ...e.slice(4)], CONTENTS.slice(0, 2), 'security'],
    ['swaps two records', (e: string[]) => [...e.slice(0, 3), e[4]!, e[3]!, ...e.slice(5)], CONTENTS.slice(0, 2), 'security'],
    ['repeats a record', (e: string[]) => [...e.slice(0, 4), e[3]!, ...e.slice(4)], CONTENTS.slice(0, 3), 'security'],
    ['drops the final record', (e: string[]) => e.slice(0, -1), CONTENTS, 'truncated'],
    ['sends only the header', (e: string[]) => e.slice(0, 1), [], 'truncated'],
    ['adds a second data line to a record', (e: string[]) => [...e.slice(0, 3), e[3]!.replace('\n\n', '\ndata: AAAA\n\n'), ...e.slice(4)], CONTENTS.slice(0, 2), 'security'],
  ] as const)('%s', async (_name, change, contents, end) => {
    rewrite(change as (events: string[]) => string[]);
    expect(await outcome(viaProxy().create(ask()))).toEqual({ contents, end });
  });

  it('cut after the header: truncated, wherever the cut falls in the body', async () => {
    let cutAt = 0;
    setup.proxy.hooks = {
      answer: (answer, request) => {
        if (request.method === 'POST') answer.body = answer.body.subarray(0, cutAt);
      },
    };
    // Through the header and each record, at its start, middle and end, and just short of the whole body.
    const full = eventsOf((await captureStream()).body);
    const ends = full.map((_, i) => full.slice(0, i + 1).join('').length);
    // Before the header ends, create() itself fails: cut short, nothing delivered (in core, at every byte).
    for (const [i, end] of ends.slice(0, -1).entries()) {
      for (const cut of [end - Math.floor(full[i]!.length / 2), end - 1, end]) {
        cutAt = cut;
        const delivered = ends.slice(1, -1).filter((e) => e <= cut).length;
        expect(await outcome(viaProxy().create(ask())), `cut at ${cut}`).toEqual({ contents: CONTENTS.slice(0, delivered), end: 'truncated' });
      }
    }
  });

  it('replays a whole earlier stream in answer to a new request: a security error at its first record', async () => {
    const earlier = await captureStream();
    setup.proxy.hooks = { answer: (answer, request) => void (request.method === 'POST' && Object.assign(answer, earlier)) };
    expect(await outcome(viaProxy().create(ask()))).toEqual({ contents: [], end: 'security' });
  });

  it('sends a stream to a request that did not ask for one: refused as a security error', async () => {
    const earlier = await captureStream();
    setup.proxy.hooks = { answer: (answer, request) => void (request.method === 'POST' && Object.assign(answer, earlier)) };
    const err = await viaProxy().create(askWhole()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(/streamed its answer to a request that did not ask for a stream/);
  });
});

/** One streamed answer as the proxy saw it (status, headers, body). */
async function captureStream(): Promise<Pick<ProxiedAnswer, 'status' | 'headers' | 'body'>> {
  let seen: ProxiedAnswer | undefined;
  const hooks = setup.proxy.hooks;
  setup.proxy.hooks = { answer: (answer, request) => void (request.method === 'POST' && (seen = { ...answer })) };
  await outcome(viaProxy().create(ask()));
  setup.proxy.hooks = hooks;
  return { status: seen!.status, headers: seen!.headers, body: seen!.body };
}

describe('a connection that breaks mid-stream', () => {
  let breaker: http.Server;
  let slow: NomyoServer; // its records a pause apart: the break falls between them
  let url = '';
  /** How many events pass before the connection is reset. */
  let breakAfter = 4;
  /** What comes after those events: a reset, or heartbeats for as long as the client stays. */
  let then: 'reset' | 'heartbeats' = 'reset';
  beforeAll(async () => {
    slow = await startTestServer({ echoDelayMs: 30 });
    // Forwards to the router and passes the stream on as it comes, then resets the connection after `breakAfter` events.
    breaker = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const { host: _host, ...headers } = req.headers;
        const out = http.request(new URL(req.url!, slow.url), { method: req.method, headers }, (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          let events = 0;
          const breaks = () => req.method === 'POST' && events >= breakAfter;
          answer.on('data', (piece: Buffer) => {
            events += piece.toString('latin1').split('\n\n').length - 1;
            // Once what was written has left: the client gets it, then the connection ends mid-body.
            res.write(piece, () => {
              if (!breaks() || res.destroyed) return;
              if (then === 'reset') return void res.socket?.destroy();
              const beat = setInterval(() => res.write(': keep-alive\n\n'), 50);
              res.once('close', () => clearInterval(beat));
            });
          });
          // The body's end is never sent once the break is due.
          answer.on('end', () => void (breaks() || res.end()));
        });
        out.end(Buffer.concat(parts));
      });
    });
    await new Promise<void>((resolve) => breaker.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(breaker.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    breaker.closeAllConnections();
    await new Promise((resolve) => breaker.close(resolve));
    await slow.close();
  });

  it('a reset connection after the header: StreamTruncatedError after the records that arrived, never a normal end', async () => {
    breakAfter = 4; // the header and three records
    const result = await outcome(clientFor({ url } as NomyoServer, { maxRetries: 0 }).create(ask()));
    expect(result.end).toBe('truncated');
    expect(result.contents).toEqual(CONTENTS.slice(0, result.contents.length));
    expect(result.contents.length).toBeLessThan(CONTENTS.length);
  });

  it('a reset connection after the final record, before the body has ended: the answer is whole, a normal end', async () => {
    breakAfter = CONTENTS.length + 2; // the header, every record and the final one
    then = 'reset';
    expect(await outcome(clientFor({ url } as NomyoServer, { maxRetries: 0 }).create(ask()))).toEqual({ contents: CONTENTS, end: 'normal' });
  });

  it('heartbeats without end after the final record: the answer is whole, a normal end once the idle limit has passed from it', async () => {
    breakAfter = CONTENTS.length + 2;
    then = 'heartbeats';
    const t0 = performance.now();
    const result = await outcome(clientFor({ url } as NomyoServer, { maxRetries: 0, streamIdleTimeout: 300 }).create(ask()));
    expect(result).toEqual({ contents: CONTENTS, end: 'normal' });
    // The records come 30 ms apart; then 300 ms from the final record, however many heartbeats come.
    expect(performance.now() - t0).toBeLessThan(3000);
    then = 'reset';
  });
});
