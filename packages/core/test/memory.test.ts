import { describe, expect, it } from 'vitest';
import { SecureByteContext } from '../src/memory/context.js';
import { JsSecureMemory } from '../src/memory/js-memory.js';
import type { SecureMemory } from '../src/memory/secure-memory.js';

describe('SecureByteContext', () => {
  it('zeroes the real buffer after use, and after a failure', async () => {
    const ctx = new SecureByteContext(new JsSecureMemory());
    const secret = new Uint8Array([1, 2, 3, 4]);
    const seen = await ctx.use(secret, (b) => Array.from(b));
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(Array.from(secret)).toEqual([0, 0, 0, 0]);

    const again = new Uint8Array([5, 6]);
    await expect(ctx.use(again, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(Array.from(again)).toEqual([0, 0]);
  });

  it('a zeroing failure never masks the original error, and surfaces when it is the only one', async () => {
    const broken: SecureMemory = Object.assign(new JsSecureMemory(), {
      zero: () => {
        throw new Error('zeroing failed');
      },
    });
    const ctx = new SecureByteContext(broken);
    await expect(ctx.use(new Uint8Array(1), () => Promise.reject(new Error('original')))).rejects.toThrow('original');
    await expect(ctx.use(new Uint8Array(1), () => 1)).rejects.toThrow('zeroing failed');
  });

  it('unlocks what it locked', async () => {
    const calls: string[] = [];
    const memory: SecureMemory = Object.assign(new JsSecureMemory(), {
      lock: () => (calls.push('lock'), true),
      unlock: (v: Uint8Array) => void (calls.push('unlock'), v.fill(0)),
      zero: () => void calls.push('zero'),
    });
    const buf = new Uint8Array([9]);
    await new SecureByteContext(memory).use(buf, () => calls.push('use'));
    expect(calls).toEqual(['lock', 'use', 'unlock']);
    expect(buf[0]).toBe(0);
  });
});

describe('SecureByteContext.randomBytes (v2 request keys)', () => {
  it('with native memory, writes the key straight into a secure allocation and frees (zeroes) it after use', async () => {
    const calls: string[] = [];
    let handed: Uint8Array | undefined;
    const native: SecureMemory = Object.assign(new JsSecureMemory(), {
      kind: 'native' as const,
      lock: () => (calls.push('lock'), true),
      alloc: (size: number) => (calls.push(`alloc ${size}`), (handed = new Uint8Array(size))),
      free: (v: Uint8Array) => void (calls.push('free'), v.fill(0)),
    });
    const ctx = new SecureByteContext(native);
    const key = ctx.randomBytes(32);
    expect(key).toBe(handed);
    const copy = await ctx.use(key, (k) => k.slice());
    expect(copy.some((b) => b !== 0)).toBe(true);
    expect(key.every((b) => b === 0)).toBe(true);
    // An allocation is freed, not locked again and unlocked.
    expect(calls).toEqual(['alloc 32', 'free']);
  });

  it('otherwise, random bytes in an ordinary buffer, zeroed after use; two keys differ', async () => {
    const ctx = new SecureByteContext(new JsSecureMemory());
    const [a, b] = [ctx.randomBytes(32), ctx.randomBytes(32)];
    expect(a).not.toEqual(b);
    await ctx.use(a, () => undefined);
    expect(a.every((x) => x === 0)).toBe(true);
  });
});
