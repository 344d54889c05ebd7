/** createSecureFetch's streamed body: events made as they are read, [DONE] at the end, errors as SDKs expect them. */
import { describe, expect, it } from 'vitest';
import { chunksToEventStream } from '../../src/client/event-stream.js';
import { APIError, SecurityError } from '../../src/errors.js';

const decoder = new TextDecoder();

function options(log: string[] = []) {
  return {
    errorBody: (err: APIError) => ({ error: { message: err.detail, code: err.status } }),
    bodyError: (err: unknown) => new Error(`body: ${(err as Error).name}`),
    cancel: () => log.push('cancel'),
  };
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<string[]> {
  const reader = body.getReader();
  const events: string[] = [];
  for (let r = await reader.read(); !r.done; r = await reader.read()) events.push(decoder.decode(r.value));
  return events;
}

describe('chunksToEventStream', () => {
  it('reads the next chunk only when the reader asks for the next event', async () => {
    const taken: number[] = [];
    async function* chunks() {
      for (let i = 0; i < 100; i++) {
        taken.push(i);
        yield { n: i };
      }
    }
    const reader = chunksToEventStream(chunks(), options()).getReader();
    for (let i = 0; i < 3; i++) expect(decoder.decode((await reader.read()).value)).toBe(`data: {"n":${i}}\n\n`);
    expect(taken.length).toBeLessThanOrEqual(4);
    await reader.cancel();
    expect(taken.length).toBeLessThanOrEqual(4);
  });

  it('ends with data: [DONE]', async () => {
    async function* chunks() {
      yield { a: 1 };
    }
    expect(await readAll(chunksToEventStream(chunks(), options()))).toEqual(['data: {"a":1}\n\n', 'data: [DONE]\n\n']);
  });

  it('sends an APIError from the stream as a data: {"error"} event, after the chunks before it, and no [DONE]', async () => {
    async function* chunks() {
      yield { a: 1 };
      throw new APIError(429, { detail: 'slow down', headers: new Headers(), sealed: true });
    }
    expect(await readAll(chunksToEventStream(chunks(), options()))).toEqual(['data: {"a":1}\n\n', 'data: {"error":{"message":"slow down","code":429}}\n\n']);
  });

  it('errors the body with any other failure (what a broken network does), after the chunks before it', async () => {
    async function* chunks() {
      yield { a: 1 };
      throw new SecurityError('forged');
    }
    const reader = chunksToEventStream(chunks(), options()).getReader();
    expect(decoder.decode((await reader.read()).value)).toBe('data: {"a":1}\n\n');
    await expect(reader.read()).rejects.toThrow('body: SecurityError');
  });

  it('a reader that cancels closes the connection and ends the chunks', async () => {
    const log: string[] = [];
    async function* chunks() {
      try {
        for (;;) yield { a: 1 };
      } finally {
        log.push('returned');
      }
    }
    const reader = chunksToEventStream(chunks(), options(log)).getReader();
    await reader.read();
    await reader.cancel();
    expect(log).toEqual(['cancel', 'returned']);
  });
});
