/**
 * A streamed answer read from a response body, as the client reads it: a stream made by the router's
 * sealer and cut at every byte never ends normally, delivers exactly the chunks whose records arrived
 * whole, and delivers nothing after its error, however the body is cut into pieces.
 */
import { describe, expect, it } from 'vitest';
import { importHkdfKey } from '../../src/crypto/hkdf.js';
import type { Bytes } from '../../src/crypto/subtle.js';
import { heapBytes } from '../../src/memory/owned-bytes.js';
import { StreamOpener } from '../../src/protocol/stream/open-stream.js';
import { StreamSealer } from '../../src/protocol/stream/seal-stream.js';
import { StreamAnswer } from '../../src/client/stream-answer.js';
import { Deadline } from '../../src/transport/deadline.js';
import { ResponseStream } from '../../src/transport/response-stream.js';
import { APIError, APIUserAbortError, SecurityError, StreamTruncatedError } from '../../src/errors.js';
import { decodeBase64 } from '../../src/protocol/base64.js';
import { readVectorText } from '../helpers/vectors.js';
import { MAX_STREAM_FILLER_CHARS } from '../../src/protocol/constants.js';

const PAYLOAD_ID = 'cut-test';
const chunk = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] });

async function sealedStream(k: Uint8Array, words: string[]): Promise<{ body: Uint8Array; ends: number[] }> {
  const sealer = await StreamSealer.start(await importHkdfKey(k as Bytes), PAYLOAD_ID);
  const events = [sealer.header()];
  for (const w of words) events.push(await sealer.record(JSON.stringify(chunk(w))));
  events.push(await sealer.final());
  const text = events.join('');
  // Where each event ends (after its blank line): a record is delivered once the body reaches it.
  const ends: number[] = [];
  let at = 0;
  for (const e of events) ends.push((at += e.length));
  return { body: new TextEncoder().encode(text), ends };
}

/** The body in pieces of `size` bytes as a response body stream. */
function bodyOf(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, (at += size)));
    },
  });
}

async function read(k: Uint8Array, body: Uint8Array, size: number): Promise<{ contents: string[]; end: 'normal' | 'truncated' | 'security' | string }> {
  const answer = new StreamAnswer(new ResponseStream(bodyOf(body, size), new Headers(), new Deadline(10_000, undefined, 'stream header')), new StreamOpener(importHkdfKey(k as Bytes), PAYLOAD_ID, heapBytes));
  const contents: string[] = [];
  try {
    await answer.start();
    const chunks = answer.chunks();
    try {
      for await (const c of chunks) contents.push(c.choices[0]!.delta.content!);
    } catch (err) {
      // Nothing after the error.
      expect((await chunks.next()).done).toBe(true);
      throw err;
    }
    return { contents, end: 'normal' };
  } catch (err) {
    return { contents, end: err instanceof StreamTruncatedError ? 'truncated' : err instanceof SecurityError ? 'security' : String(err) };
  }
}

describe('a streamed answer cut short', () => {
  it('cut at every byte, whole or a byte at a time: never a normal end, and exactly the records that arrived whole', async () => {
    const k = crypto.getRandomValues(new Uint8Array(32));
    const words = ['one ', 'two ', 'three'];
    const { body, ends } = await sealedStream(k, words);
    expect(await read(k, body, body.length)).toEqual({ contents: words, end: 'normal' });
    for (let cut = 0; cut < body.length; cut++) {
      // Records are events 1..n: the chunks delivered are those whose event ended within the cut.
      const whole = ends.slice(1, -1).filter((end) => end <= cut).length;
      for (const size of cut % 97 === 0 ? [cut || 1, 1] : [cut || 1]) {
        const result = await read(k, body.subarray(0, cut), size);
        expect(result, `cut at ${cut} in pieces of ${size}`).toEqual({ contents: words.slice(0, whole), end: 'truncated' });
      }
    }
  });

  it('a stream sealed for another K: a security error at the first record, nothing delivered', async () => {
    const { body } = await sealedStream(crypto.getRandomValues(new Uint8Array(32)), ['a']);
    expect(await read(crypto.getRandomValues(new Uint8Array(32)), body, 7)).toEqual({ contents: [], end: 'security' });
  });

  it('a damaged record: the chunks before it, in the same network piece or not, then the security error', async () => {
    const k = crypto.getRandomValues(new Uint8Array(32));
    const { body, ends } = await sealedStream(k, ['one ', 'two ', 'three']);
    const damaged = body.slice();
    // A bit flipped in the third record's base64 (after its "data: ").
    damaged[ends[2]! + 10] = damaged[ends[2]! + 10] === 0x41 ? 0x42 : 0x41;
    for (const size of [damaged.length, 64, 1]) expect(await read(k, damaged, size)).toEqual({ contents: ['one ', 'two '], end: 'security' });
  });

  it('an abort delivers nothing more, even chunks that arrived in the same network piece', async () => {
    const k = crypto.getRandomValues(new Uint8Array(32));
    const { body } = await sealedStream(k, ['one ', 'two ', 'three']);
    const caller = new AbortController();
    const answer = new StreamAnswer(new ResponseStream(bodyOf(body, body.length), new Headers(), new Deadline(10_000, caller.signal, 'stream header')), new StreamOpener(importHkdfKey(k as Bytes), PAYLOAD_ID, heapBytes));
    await answer.start();
    const chunks = answer.chunks();
    expect((await chunks.next()).value.choices[0].delta.content).toBe('one ');
    caller.abort();
    await expect(chunks.next()).rejects.toBeInstanceOf(APIUserAbortError);
    expect((await chunks.next()).done).toBe(true);
  });

  it('an abort while the header\'s keys are made (Web Crypto derives them asynchronously): start() rejects with the abort', async () => {
    const k = crypto.getRandomValues(new Uint8Array(32));
    const { body } = await sealedStream(k, ['one ']);
    const caller = new AbortController();
    let release!: () => void;
    const kdfKey = new Promise<Awaited<ReturnType<typeof importHkdfKey>>>((resolve) => (release = () => resolve(importHkdfKey(k as Bytes))));
    const answer = new StreamAnswer(new ResponseStream(bodyOf(body, body.length), new Headers(), new Deadline(10_000, caller.signal, 'stream header')), new StreamOpener(kdfKey, PAYLOAD_ID, heapBytes));
    const started = answer.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    caller.abort();
    release();
    await expect(started).rejects.toBeInstanceOf(APIUserAbortError);
  });
});

describe('what a peer on the path cannot make the client do', () => {
  const k = crypto.getRandomValues(new Uint8Array(32));
  const encoder = new TextEncoder();
  /** The sealed stream's events with `between` inserted after each one but the last. */
  async function withFiller(between: string): Promise<Uint8Array> {
    const { body, ends } = await sealedStream(k, ['one ', 'two']);
    const text = new TextDecoder().decode(body);
    const events = ends.map((end, i) => text.slice(i === 0 ? 0 : ends[i - 1], end));
    return encoder.encode(events.join(between));
  }

  it('heartbeats of an hour between events pass; filler without end (blank lines, comments, fields) is refused, not parsed on and on', async () => {
    expect(await read(k, await withFiller(': keep-alive\n\n'.repeat(240)), 4096)).toEqual({ contents: ['one ', 'two'], end: 'normal' });
    for (const filler of ['\n', ': x\n', 'id: 1\n', 'event: message\n']) {
      expect(await read(k, await withFiller(filler.repeat(70_000 / filler.length)), 4096), JSON.stringify(filler)).toEqual({ contents: [], end: 'security' });
    }
  });

  it('an event with a second data line is refused at that line, not held until the event is whole', async () => {
    const { body, ends } = await sealedStream(k, ['one ']);
    const header = body.subarray(0, ends[0]);
    // The event never ends: refused at its second line, where before it waited for a blank line (cut short).
    const more = new Uint8Array([...header, ...encoder.encode('data: AAAA\ndata: BBBB\n')]);
    expect(await read(k, more, 7)).toEqual({ contents: [], end: 'security' });
  });

  it('a header over 4 KiB is refused before it is parsed; unknown fields within it are ignored', async () => {
    const { body, ends } = await sealedStream(k, ['one ']);
    const text = new TextDecoder().decode(body);
    const header = text.slice(0, ends[0]);
    const withField = (size: number) => encoder.encode(header.replace('{', `{"extra":"${'x'.repeat(size)}",`) + text.slice(ends[0]));
    expect(await read(k, withField(3000), 512)).toEqual({ contents: ['one '], end: 'normal' });
    expect(await read(k, withField(5000), 512)).toEqual({ contents: [], end: 'security' });
  });

  it('before the header, a line is refused as it comes once it passes the filler allowed (64 KiB), not held to 8 MiB; records after it may be longer', async () => {
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        const piece = encoder.encode(sent === 0 ? 'event: nomyo-stream\ndata: {"x":"' : 'x'.repeat(4096));
        sent += piece.length;
        controller.enqueue(piece);
      },
    });
    const answer = new StreamAnswer(new ResponseStream(endless, new Headers(), new Deadline(10_000, undefined, 'stream header')), new StreamOpener(importHkdfKey(k as Bytes), PAYLOAD_ID, heapBytes));
    await expect(answer.start()).rejects.toThrow(new SecurityError(`malformed stream: a line over ${MAX_STREAM_FILLER_CHARS} characters`));
    expect(sent).toBeLessThan(MAX_STREAM_FILLER_CHARS + 3 * 4096);
    // A record far longer than that, after the header, is read.
    const { body } = await sealedStream(k, ['y'.repeat(200_000)]);
    expect(await read(k, body, 512)).toEqual({ contents: ['y'.repeat(200_000)], end: 'normal' });
  });

  it('heartbeats after the final record do not hold the end back: the answer is whole, and the idle limit counts from it', async () => {
    const { body } = await sealedStream(k, ['one ', 'two']);
    const heartbeat = encoder.encode(': keep-alive\n\n');
    let sent = false;
    // The whole stream, then a heartbeat every 50 ms for as long as anyone reads.
    const endless = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!sent) {
          sent = true;
          return controller.enqueue(body);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
        controller.enqueue(heartbeat);
      },
    });
    const answer = new StreamAnswer(new ResponseStream(endless, new Headers(), new Deadline(10_000, undefined, 'stream header')), new StreamOpener(importHkdfKey(k as Bytes), PAYLOAD_ID, heapBytes), 300);
    await answer.start();
    const t0 = performance.now();
    const contents: string[] = [];
    const ended = (async () => {
      for await (const c of answer.chunks()) contents.push(c.choices[0]!.delta.content!);
      return 'normal';
    })();
    const outcome = await Promise.race([ended, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3000))]);
    expect(outcome).toBe('normal');
    expect(contents).toEqual(['one ', 'two']);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  // A body that ignores the abort, as a custom fetch's may: what it holds is still read.
  it.each([
    ['the final record is read all the same: APIUserAbortError, not a normal end', 'whole'],
    ['the body ends before the final record: APIUserAbortError, not a stream cut short', 'no final record'],
  ] as const)('an abort after the last chunk, then %s', async (_what, which) => {
    const { body, ends } = await sealedStream(k, ['one ', 'two']);
    const sent = which === 'whole' ? body : body.subarray(0, ends[2]); // the header and two records
    const caller = new AbortController();
    const answer = new StreamAnswer(new ResponseStream(bodyOf(sent, sent.length), new Headers(), new Deadline(10_000, caller.signal, 'stream header')), new StreamOpener(importHkdfKey(k as Bytes), PAYLOAD_ID, heapBytes));
    await answer.start();
    const chunks = answer.chunks();
    expect((await chunks.next()).done).toBe(false);
    expect((await chunks.next()).done).toBe(false);
    caller.abort();
    await expect(chunks.next()).rejects.toBeInstanceOf(APIUserAbortError);
  });
});

describe('an error sealed into the final record', () => {
  it('the independent implementation’s error-end vector: both chunks, then an APIError typed by its code, with its type and code as err.error', async () => {
    const v = JSON.parse(readVectorText('v2-stream/valid/error-end.json')) as { K: string; payload_id: string; body: string; expect: { chunks: unknown[] } };
    const answer = new StreamAnswer(
      new ResponseStream(bodyOf(new TextEncoder().encode(v.body), 7), new Headers(), new Deadline(10_000, undefined, 'stream header')),
      new StreamOpener(importHkdfKey(decodeBase64(v.K) as Bytes), v.payload_id, heapBytes),
    );
    await answer.start();
    const chunks: unknown[] = [];
    const err = await (async () => {
      for await (const c of answer.chunks()) chunks.push(c);
    })().catch((e: unknown) => e);
    expect(chunks).toEqual(v.expect.chunks);
    expect(err).toBeInstanceOf(APIError);
    // Its code, 502, is an HTTP status: the error's status.
    expect(err).toMatchObject({ status: 502, sealed: true, detail: 'upstream connection lost', type: 'upstream_error' });
    expect((err as APIError).error).toEqual({ message: 'upstream connection lost', type: 'upstream_error', code: 502, param: null });
  });
});
