/** stream-commit.ts on its own: when a silent model's stream starts, and the chunks it gets later. */
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../src/http-error.js';
import { lateChunks, settlesWithin } from '../src/stream-commit.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
const request = { model: 'm', messages: [], stream: true, stream_options: { include_usage: true } };

describe('settlesWithin', () => {
  it('says whether the answer settled, either way, within the time, and leaves no timer behind', async () => {
    const before = timers();
    expect(await settlesWithin(Promise.resolve('answer'), 1000)).toBe(true);
    expect(await settlesWithin(Promise.reject(new Error('refused')), 1000)).toBe(true);
    expect(timers()).toBe(before);
    expect(await settlesWithin(sleep(200), 20)).toBe(false);
  });
});

describe('lateChunks', () => {
  it("a model's own chunks, and its iterator closed by return()", async () => {
    let closed = false;
    const model = {
      async *[Symbol.asyncIterator]() {
        try {
          yield 'one';
          yield 'two';
        } finally {
          closed = true;
        }
      },
    };
    const iterator = lateChunks(Promise.resolve(model), request)[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: 'one' });
    await iterator.return!();
    expect(closed).toBe(true);
  });

  it('a whole answer as chunks, with its usage when asked for; one that is no completion is a 502', async () => {
    const whole = { object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'late but whole' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 3 } };
    const chunks: Array<{ choices: Array<{ delta: { content?: string } }>; usage?: unknown }> = [];
    for await (const chunk of lateChunks(Promise.resolve(whole), request)) chunks.push(chunk as (typeof chunks)[number]);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('late but whole');
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
    await expect(lateChunks(Promise.resolve({ choices: 'none' }), request)[Symbol.asyncIterator]().next()).rejects.toMatchObject({ status: 502 });
  });

  it("a refusal is the first next()'s error; unasked for, it ends nothing (no unhandled rejection)", async () => {
    const refusal = new UpstreamError(429, 'rate limited', { message: 'slow down', type: 'rate_limit_error', code: null, status: 429 });
    const answer = Promise.reject(refusal);
    void settlesWithin(answer, 10); // as the handler does: the answer itself is handled
    await expect(lateChunks(answer, request)[Symbol.asyncIterator]().next()).rejects.toBe(refusal);
    lateChunks(answer, request)[Symbol.asyncIterator](); // made, never asked
    await sleep(20); // an unhandled rejection would fail the run here
  });
});
