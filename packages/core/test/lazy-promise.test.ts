import { describe, expect, it } from 'vitest';
import { lazyPromise } from '../src/lazy-promise.js';

describe('lazyPromise', () => {
  it('starts its work only when awaited, once, and gives its value to every waiter', async () => {
    let runs = 0;
    const p = lazyPromise(async () => ++runs);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(runs).toBe(0);
    expect(p).toBeInstanceOf(Promise);
    expect(await Promise.all([p, p.then((v) => v * 10)])).toEqual([1, 10]);
    expect(runs).toBe(1);
  });

  it('starts on catch and finally too, and passes a failure (thrown at once or later) to its waiters', async () => {
    let started = false;
    const failing = lazyPromise<number>(() => {
      started = true;
      throw new Error('no key');
    });
    expect(started).toBe(false);
    await expect(failing.catch((e: Error) => e.message)).resolves.toBe('no key');
    expect(started).toBe(true);
    const later = lazyPromise<number>(async () => Promise.reject(new Error('later')));
    let finished = false;
    await expect(later.finally(() => (finished = true))).rejects.toThrow('later');
    expect(finished).toBe(true);
  });

  it('what then() makes is a plain promise: awaiting it starts nothing else', async () => {
    const derived = lazyPromise(async () => 1).then((v) => v + 1);
    expect(derived.constructor).toBe(Promise);
    expect(await derived).toBe(2);
  });
});
