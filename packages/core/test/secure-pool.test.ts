import { describe, expect, it } from 'vitest';
import { MAX_POOLED_BYTES, SecureBufferPool } from '../src/memory/secure-pool.js';

function fakeAllocator() {
  const log = { allocated: [] as number[], released: 0 };
  return {
    log,
    allocator: {
      allocate: (size: number) => (log.allocated.push(size), new Uint8Array(size)),
      release: () => void log.released++,
      zero: (view: Uint8Array) => view.fill(0),
    },
  };
}

describe('SecureBufferPool', () => {
  it('hands out views of the asked size, zeroes them on return, and reuses the buffer', () => {
    const { log, allocator } = fakeAllocator();
    const pool = new SecureBufferPool(allocator);
    const a = pool.take(1000);
    expect(a.length).toBe(1000);
    a.fill(7);
    expect(pool.give(a)).toBe(true);
    expect(a.every((b) => b === 0)).toBe(true);
    const b = pool.take(3000);
    expect(b.buffer).toBe(a.buffer);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(log.allocated).toEqual([4096]);
    expect(pool.give(new Uint8Array(4))).toBe(false);
    expect(pool.give(b)).toBe(true);
    expect(pool.give(b)).toBe(false); // a view comes back once
  });

  it('picks the smallest idle buffer that fits, and allocates when none does', () => {
    const { log, allocator } = fakeAllocator();
    const pool = new SecureBufferPool(allocator);
    const small = pool.take(100);
    const large = pool.take(200_000);
    pool.give(small);
    pool.give(large);
    expect(pool.take(50).buffer).toBe(small.buffer);
    expect(pool.take(150_000).buffer).toBe(large.buffer);
    pool.take(300_000);
    expect(log.allocated).toEqual([4096, 262144, 327680]);
  });

  it('keeps at most MAX_POOLED_BYTES idle and releases the rest', () => {
    const { log, allocator } = fakeAllocator();
    const pool = new SecureBufferPool(allocator);
    // Large buffers are allocated 1/32 larger (see take): 28 MiB comes as 28.875 MiB.
    const views = [pool.take(28 * 1024 * 1024), pool.take(4 * 1024 * 1024)];
    expect(views[0]!.buffer.byteLength).toBe(28 * 1024 * 1024 + 28 * 32 * 1024);
    for (const v of views) pool.give(v);
    expect(pool.idleBytes).toBe(28 * 1024 * 1024 + 28 * 32 * 1024);
    expect(pool.idleBytes).toBeLessThanOrEqual(MAX_POOLED_BYTES);
    expect(log.released).toBe(1);
  });

  it('gives a large buffer room for a slightly larger request next time', () => {
    const { allocator } = fakeAllocator();
    const pool = new SecureBufferPool(allocator);
    const request = pool.take(10 * 1024 * 1024 - 100);
    pool.give(request);
    // An answer a few hundred bytes longer than its request reuses the request's buffer.
    expect(pool.take(10 * 1024 * 1024 + 300).buffer).toBe(request.buffer);
  });
});
