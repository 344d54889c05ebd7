import { describe, expect, it } from 'vitest';
import { SecureByteContext, unlockedWarning } from '../../src/memory/context.js';
import { JsSecureMemory } from '../../src/memory/js-memory.js';
import type { SecureMemory } from '../../src/memory/secure-memory.js';

describe('SecureByteContext', () => {
  it('zeroes the bytes after use, and after a failure', async () => {
    const ctx = new SecureByteContext(new JsSecureMemory());
    const secret = ctx.take(4);
    secret.bytes.set([1, 2, 3, 4]);
    expect(await ctx.use(secret, (b) => Array.from(b))).toEqual([1, 2, 3, 4]);
    expect(Array.from(secret.bytes)).toEqual([0, 0, 0, 0]);

    const again = ctx.take(2);
    again.bytes.set([5, 6]);
    await expect(ctx.use(again, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(Array.from(again.bytes)).toEqual([0, 0]);
  });

  it('a zeroing failure never masks the original error, and surfaces when it is the only one', async () => {
    const broken: SecureMemory = Object.assign(new JsSecureMemory(), {
      free: () => {
        throw new Error('zeroing failed');
      },
    });
    const ctx = new SecureByteContext(broken);
    await expect(ctx.use(ctx.take(1), () => Promise.reject(new Error('original')))).rejects.toThrow('original');
    await expect(ctx.use(ctx.take(1), () => 1)).rejects.toThrow('zeroing failed');
  });

  it('adopts bytes made elsewhere: locked while held, unlocked (zeroed) when released', async () => {
    const calls: string[] = [];
    const memory: SecureMemory = Object.assign(new JsSecureMemory(), {
      lock: () => (calls.push('lock'), true),
      unlock: (v: Uint8Array) => void (calls.push('unlock'), v.fill(0)),
      zero: () => void calls.push('zero'),
    });
    const buf = new Uint8Array([9]);
    const ctx = new SecureByteContext(memory);
    await ctx.use(ctx.adopt(buf), () => calls.push('use'));
    expect(calls).toEqual(['lock', 'use', 'unlock']);
    expect(buf[0]).toBe(0);
  });

  it('encodes text straight into secure memory, its exact UTF-8', async () => {
    const ctx = new SecureByteContext(new JsSecureMemory());
    const text = 'pässwörd 🔑';
    const bytes = ctx.encodeUtf8(text);
    expect(Buffer.from(bytes.bytes).toString('utf8')).toBe(text);
    expect(bytes.bytes.length).toBe(Buffer.byteLength(text));
    bytes.release();
  });
});

describe('SecureByteContext.randomBytes (v2 request keys)', () => {
  it('writes the key straight into a secure allocation and frees (zeroes) it after use', async () => {
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
    expect(key.bytes).toBe(handed);
    const copy = await ctx.use(key, (k) => k.slice());
    expect(copy.some((b) => b !== 0)).toBe(true);
    expect(key.bytes.every((b) => b === 0)).toBe(true);
    // An allocation is freed, not locked again and unlocked.
    expect(calls).toEqual(['alloc 32', 'free']);
  });

  it('two keys differ', async () => {
    const ctx = new SecureByteContext(new JsSecureMemory());
    const [a, b] = [ctx.randomBytes(32), ctx.randomBytes(32)];
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(false);
    a.release();
    b.release();
  });
});

describe('SecureByteContext: a secret held unlocked is told', () => {
  it('each take whose secret the memory counts as unlocked, fresh or reused, tells its size', () => {
    // A memory whose every allocation is unlocked: the count grows at each, a reused buffer's too.
    const memory = new (class extends JsSecureMemory {
      unlockedAllocations = 0;
      override alloc(size: number): Uint8Array<ArrayBuffer> {
        this.unlockedAllocations++;
        return super.alloc(size);
      }
    })();
    const told: unknown[] = [];
    const ctx = new SecureByteContext(memory, (why) => told.push(why));
    ctx.take(16).release();
    ctx.take(16).release();
    expect(told).toEqual([16, 16]);
    expect(unlockedWarning(16)).toMatch(/^secureMemory: a secret's buffer of 16 bytes could not be locked \(RLIMIT_MEMLOCK too low\)/);
  });

  it('zeroing only because an installed addon would not load: each take tells why; zeroing by choice tells nothing', () => {
    const failure = '@nomyo/native: /app/node_modules/@nomyo/native/build/Release/nomyo_native.node: file too short';
    const told: unknown[] = [];
    const ctx = new SecureByteContext(new JsSecureMemory('zeroing only: @nomyo/native failed to load', failure), (why) => told.push(why));
    ctx.take(8).release();
    ctx.encodeUtf8('secret').release();
    expect(told).toEqual([{ addonFailed: failure }, { addonFailed: failure }]);
    expect(unlockedWarning({ addonFailed: failure })).toBe(
      `secureMemory: the native addon is installed but failed to load (${failure}): secrets are zeroed only, not locked or dump-excluded; reinstall @nomyo/native for this platform and architecture (NOMYO_DISABLE_NATIVE=1 chooses zeroing only without this warning)`,
    );

    const quiet: unknown[] = [];
    const plain = new SecureByteContext(new JsSecureMemory('zeroing only: @nomyo/native not installed'), (why) => quiet.push(why));
    plain.take(8).release();
    expect(quiet).toEqual([]);
  });
});
