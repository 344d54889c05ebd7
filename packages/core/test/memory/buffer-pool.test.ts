import { describe, expect, it } from 'vitest';
import { BufferPool, MAX_POOLED_BYTES } from '../../src/memory/buffer-pool.js';

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

describe('BufferPool', () => {
  it('hands out owned views of the asked size, zeroes them when released, and reuses the buffer', () => {
    const { log, allocator } = fakeAllocator();
    const pool = new BufferPool(allocator, true);
    const a = pool.take(1000);
    expect(a.bytes.length).toBe(1000);
    expect(a.secure).toBe(true);
    a.bytes.fill(7);
    a.release();
    expect(a.bytes.every((b) => b === 0)).toBe(true);
    const b = pool.take(3000);
    expect(b.bytes.buffer).toBe(a.bytes.buffer);
    expect(b.bytes.every((x) => x === 0)).toBe(true);
    expect(log.allocated).toEqual([4096]);
    // A second release gives nothing back twice: the next take is a new buffer while b is out.
    a.release();
    expect(pool.take(100).bytes.buffer).not.toBe(b.bytes.buffer);
    b.release();
    b.release();
    expect(pool.idleBytes).toBe(4096);
  });

  it('picks the smallest idle buffer that fits, and allocates when none does', () => {
    const { log, allocator } = fakeAllocator();
    const pool = new BufferPool(allocator, true);
    const small = pool.take(100);
    const large = pool.take(200_000);
    small.release();
    large.release();
    expect(pool.take(50).bytes.buffer).toBe(small.bytes.buffer);
    expect(pool.take(150_000).bytes.buffer).toBe(large.bytes.buffer);
    pool.take(300_000);
    expect(log.allocated).toEqual([4096, 262144, 327680]);
  });

  it('keeps at most MAX_POOLED_BYTES idle and releases the rest', () => {
    const { log, allocator } = fakeAllocator();
    const pool = new BufferPool(allocator, true);
    // Large buffers are allocated 1/32 larger (see take): 28 MiB comes as 28.875 MiB.
    const views = [pool.take(28 * 1024 * 1024), pool.take(4 * 1024 * 1024)];
    expect(views[0]!.bytes.buffer.byteLength).toBe(28 * 1024 * 1024 + 28 * 32 * 1024);
    for (const v of views) v.release();
    expect(pool.idleBytes).toBe(28 * 1024 * 1024 + 28 * 32 * 1024);
    expect(pool.idleBytes).toBeLessThanOrEqual(MAX_POOLED_BYTES);
    expect(log.released).toBe(1);
  });

  it('gives a large buffer room for a slightly larger request next time', () => {
    const { allocator } = fakeAllocator();
    const pool = new BufferPool(allocator, true);
    const request = pool.take(10 * 1024 * 1024 - 100);
    request.release();
    // An answer a few hundred bytes longer than its request reuses the request's buffer.
    expect(pool.take(10 * 1024 * 1024 + 300).bytes.buffer).toBe(request.bytes.buffer);
  });
});
