/**
 * A streamed answer's idle limit, on a fake clock: only the time a read waits counts, the timer
 * lapses while no read waits (a caller taking its time, or a stream dropped) and the next read arms
 * it again, and an abort leaves no timer behind.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError } from '../../src/errors.js';
import { Deadline } from '../../src/transport/deadline.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A stream's deadline whose header has come: from now on 100 ms of silence while a read waits ends it. */
function started(signal?: AbortSignal): Deadline {
  const deadline = new Deadline(10_000, signal, 'stream header');
  deadline.idle(100);
  return deadline;
}

describe('a stream\'s idle limit', () => {
  it('counts only while a read waits: no read for 1 s ends nothing, and keeps no timer', () => {
    const deadline = started();
    vi.advanceTimersByTime(1000);
    expect(deadline.signal.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a read that then waits 100 ms for nothing ends the stream with APIConnectionTimeoutError', () => {
    const deadline = started();
    vi.advanceTimersByTime(1000);
    deadline.waiting();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(deadline.signal.aborted).toBe(false);
    vi.advanceTimersByTime(2);
    expect(deadline.signal.aborted).toBe(true);
    const err = deadline.error(undefined, true);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(err.message).toBe('nothing arrived for 100 ms, not even a heartbeat');
  });

  it('each piece that arrives starts the silence again', () => {
    const deadline = started();
    deadline.waiting();
    vi.advanceTimersByTime(60);
    deadline.touch();
    deadline.waiting();
    vi.advanceTimersByTime(60);
    expect(deadline.signal.aborted).toBe(false);
    vi.advanceTimersByTime(41);
    expect(deadline.signal.aborted).toBe(true);
  });

  it('once the answer is whole, its end is waited for 5 s at most, however long the idle limit, and nothing that comes extends it', () => {
    const deadline = new Deadline(10_000, undefined, 'stream header');
    deadline.idle(60_000);
    deadline.waiting();
    vi.advanceTimersByTime(30_000);
    deadline.touch();
    deadline.whole();
    vi.advanceTimersByTime(4_000);
    deadline.touch(); // a heartbeat after the final record
    deadline.waiting();
    vi.advanceTimersByTime(999);
    expect(deadline.signal.aborted).toBe(false);
    vi.advanceTimersByTime(2);
    expect(deadline.signal.aborted).toBe(true);
  });

  it('an abort by the caller leaves no timer, and a read after it arms none', () => {
    const caller = new AbortController();
    const deadline = started(caller.signal);
    caller.abort();
    expect(vi.getTimerCount()).toBe(0);
    deadline.waiting();
    expect(vi.getTimerCount()).toBe(0);
    expect(deadline.error(undefined, true)).toBeInstanceOf(APIUserAbortError);
  });

  it('disposed, it times nothing more, and still names the limit that ended it', () => {
    const deadline = started();
    deadline.waiting();
    vi.advanceTimersByTime(101);
    deadline.dispose();
    deadline.waiting();
    expect(vi.getTimerCount()).toBe(0);
    expect(deadline.error(undefined, true).message).toBe('nothing arrived for 100 ms, not even a heartbeat');
  });
});

describe('a failure to reach the router', () => {
  it("names fetch's reason: its cause's code, else its cause's message, else its own", () => {
    const deadline = new Deadline(10_000, undefined, 'complete response');
    const failed = (cause?: object) => new TypeError('fetch failed', cause && { cause });
    const message = (err: unknown) => (deadline.error(err) as APIConnectionError).message;
    expect(message(failed(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })))).toBe('could not reach the router: ECONNREFUSED');
    expect(message(failed(new Error('bad port')))).toBe('could not reach the router: bad port');
    expect(message(failed())).toBe('could not reach the router: fetch failed');
    expect(deadline.error(failed())).toBeInstanceOf(APIConnectionError);
    deadline.dispose();
  });
});
