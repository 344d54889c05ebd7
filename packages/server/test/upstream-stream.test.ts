/**
 * An upstream's event stream read as chunks, on its own: what ends it normally ([DONE], or the end
 * after a finish reason), and what ends it with an error the final record will carry (an error
 * event, a `data: {"error"}` event, an event that is not JSON, a line too long to hold, an end
 * before the answer's, silence). However it ends, the upstream request is aborted.
 */
import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { MAX_STREAM_LINE_CHARS, MAX_STREAM_RECORD_BYTES } from '@nomyo/core/protocol';
import { HttpError, UpstreamError } from '../src/http-error.js';
import { upstreamChunks } from '../src/upstream-stream.js';

const encoder = new TextEncoder();
const chunk = (content: string, finish: string | null = null) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] });
const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;

/** A body (as undici gives one: a Node.js Readable) that sends `pieces`, then ends (or stays open: `hang`). */
function body(pieces: string[], hang = false): Readable {
  return Readable.from(
    (async function* () {
      for (const piece of pieces) yield encoder.encode(piece);
      if (hang) await new Promise(() => {});
    })(),
  );
}

async function read(pieces: string[], options: { hang?: boolean; idleMs?: number } = {}) {
  const stop = new AbortController();
  const got: unknown[] = [];
  try {
    for await (const c of upstreamChunks(body(pieces, options.hang), stop, options.idleMs ?? 5000)) got.push(c);
    return { got, error: undefined, stopped: stop.signal.aborted };
  } catch (error) {
    return { got, error, stopped: stop.signal.aborted };
  }
}

describe('upstreamChunks', () => {
  it('ends at [DONE], ignoring what follows, and aborts the upstream request', async () => {
    const result = await read([data(chunk('a')), 'data: [DONE]\n\n', data(chunk('after'))]);
    expect(result).toEqual({ got: [chunk('a')], error: undefined, stopped: true });
  });

  it('ends without [DONE] after a finish reason; before one, the end is an error', async () => {
    expect((await read([data(chunk('a')), data(chunk('', 'stop'))])).error).toBeUndefined();
    const cut = await read([data(chunk('a'))]);
    expect(cut.got).toEqual([chunk('a')]);
    expect(cut.error).toBeInstanceOf(HttpError);
    expect((cut.error as HttpError).status).toBe(502);
  });

  it.each([
    ['an error event', 'event: error\ndata: {"message":"overloaded"}\n\n', 'overloaded'],
    ['a data: {"error"} event', data({ error: { message: 'too long', code: 'context_length_exceeded' } }), 'too long'],
    ['a data: {"error": string} event (Ollama)', data({ error: 'model not loaded' }), 'model not loaded'],
  ])('%s is the upstream failing part-way: an UpstreamError with its text', async (_name, failure, message) => {
    const result = await read([data(chunk('a')), failure, data(chunk('never'))]);
    expect(result.got).toEqual([chunk('a')]);
    expect(result.error).toBeInstanceOf(UpstreamError);
    expect((result.error as UpstreamError).sealed).toMatchObject({ message });
    expect((result.error as UpstreamError).sealed.status).toBeUndefined();
    expect(result.stopped).toBe(true);
  });

  it("an error's type, code and param pass on up to 256 characters; longer ones are dropped, so its final record stays small", async () => {
    const fields = (type: string, code: string, param: string) => data({ error: { message: 'no', type, code, param } });
    const short = await read([fields('t'.repeat(256), 'c'.repeat(256), 'p'.repeat(256))]);
    expect((short.error as UpstreamError).sealed).toEqual({ message: 'no', type: 't'.repeat(256), code: 'c'.repeat(256), param: 'p'.repeat(256) });
    const long = await read([fields('t'.repeat(500_000), 'c'.repeat(257), 'p'.repeat(257))]);
    expect((long.error as UpstreamError).sealed).toEqual({ message: 'no', type: 'upstream_error', code: null, param: null });
  });

  it('an event that is not JSON, or a line too long to hold, is a 502 of our own words', async () => {
    const bad = await read(['data: {not json\n\n']);
    expect(bad.error).toMatchObject({ status: 502, detail: 'the inference backend sent an event that is not JSON' });
    const long = await read([`data: ${'x'.repeat(MAX_STREAM_LINE_CHARS)}`, 'x'], { hang: true });
    expect(long.error).toMatchObject({ status: 502, detail: 'the inference backend sent a line over 8388608 characters' });
    // A chunk of 1 MiB in `\u` escapes (Python's json.dumps writes non-ASCII so) is six times as long on its line.
    const escaped = `data: ${JSON.stringify(chunk('中'.repeat(300_000))).replace(/中/g, '\\u4e2d')}\n\n`;
    expect(escaped.length).toBeGreaterThan(MAX_STREAM_RECORD_BYTES);
    const most = await read([escaped, data(chunk('', 'stop'))]);
    expect(most.error).toBeUndefined();
    expect(most.got).toEqual([chunk('中'.repeat(300_000)), chunk('', 'stop')]);
  });

  it('an event without data (`event: ping`, a keep-alive) is passed over, as the standard does not dispatch it', async () => {
    const result = await read(['event: ping\n\n', data(chunk('a')), 'event: keep-alive\nid: 3\n\n', data(chunk('', 'stop'))]);
    expect(result.error).toBeUndefined();
    expect(result.got).toEqual([chunk('a'), chunk('', 'stop')]);
  });

  it('filler without end between events is a 502 of our own words', async () => {
    // Heartbeats of an hour's wait pass; comments without end do not.
    const waited = await read([': keep-alive\n\n'.repeat(240), data(chunk('a')), ': keep-alive\n\n'.repeat(240), data(chunk('', 'stop'))]);
    expect(waited.error).toBeUndefined();
    expect(waited.got).toEqual([chunk('a'), chunk('', 'stop')]);
    for (const line of [': x\n', 'event: ping\n\n']) {
      const filler = await read([data(chunk('a')), line.repeat(20_000)], { hang: true });
      expect(filler.got).toEqual([chunk('a')]);
      expect(filler.error).toMatchObject({ status: 502, detail: 'the inference backend sent over 65536 characters of lines without data between two events' });
    }
  });

  it('a caller slower than the idle limit between two reads is not silence: only a wait for a piece is timed', async () => {
    const stop = new AbortController();
    const got: unknown[] = [];
    for await (const c of upstreamChunks(body([data(chunk('a')), data(chunk('b')), data(chunk('', 'stop'))]), stop, 100)) {
      got.push(c);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(got).toEqual([chunk('a'), chunk('b'), chunk('', 'stop')]);
  });

  it('silence longer than the idle limit is a 504', async () => {
    const result = await read([data(chunk('a'))], { hang: true, idleMs: 100 });
    expect(result.got).toEqual([chunk('a')]);
    expect(result.error).toMatchObject({ status: 504, detail: 'the inference backend sent nothing for 100 ms' });
  });

  it('the client going away ends a read that waits, at once, even from a body that never ends it', async () => {
    const stop = new AbortController();
    const chunks = upstreamChunks(body([data(chunk('a'))], true), stop, 60_000);
    expect((await chunks.next()).value).toEqual(chunk('a'));
    const waiting = chunks.next();
    const gone = new DOMException('the client went away', 'AbortError');
    setTimeout(() => stop.abort(gone), 20);
    await expect(waiting).rejects.toBe(gone);
  });

  it('a read that waits after slow reads is timed from its own start', async () => {
    const stop = new AbortController();
    const chunks = upstreamChunks(body([data(chunk('a'))], true), stop, 150);
    await chunks.next();
    await new Promise((resolve) => setTimeout(resolve, 120)); // the caller's pause is not silence
    const started = performance.now();
    await expect(chunks.next()).rejects.toMatchObject({ status: 504 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('a body that breaks (an error, or closed before its end) is a 502 after the chunks before it; an error after the end throws nowhere', async () => {
    for (const cause of [new Error('ECONNRESET'), undefined]) {
      const stop = new AbortController();
      // A socket-like body: destroying it ends it at once (Readable.from waits for its source).
      const source = new Readable({ read() {} });
      source.push(encoder.encode(data(chunk('a'))));
      const got: unknown[] = [];
      const err = await (async () => {
        for await (const c of upstreamChunks(source, stop, 60_000)) {
          got.push(c);
          setTimeout(() => source.destroy(cause), 10);
        }
      })().catch((e: unknown) => e);
      expect(got).toEqual([chunk('a')]);
      expect(err).toMatchObject({ status: 502, detail: 'the inference backend connection broke off' });
    }
    const uncaught = vi.fn();
    process.on('uncaughtException', uncaught);
    try {
      // As undici's body: destroyed with an error when its request's signal aborts, which the end of the stream does.
      const stop = new AbortController();
      const source = new Readable({ read() {} });
      stop.signal.addEventListener('abort', () => source.destroy(new Error('request aborted')));
      source.push(encoder.encode(`${data(chunk('a', 'stop'))}data: [DONE]\n\n`));
      for await (const _ of upstreamChunks(source, stop, 60_000));
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('uncaughtException', uncaught);
    }
    expect(uncaught).not.toHaveBeenCalled();
  });
});
