import { describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../../src/keys/client-keys.js';
import { ClientKeyHolder } from '../../src/keys/key-holder.js';
import { ServerKeyCache, type ServerKey } from '../../src/keys/server-key.js';
import { DisposedError } from '../../src/errors.js';

describe('ClientKeyHolder', () => {
  it('20 concurrent first calls produce exactly one key pair', async () => {
    let made = 0;
    const holder = new ClientKeyHolder(async () => {
      made++;
      return generateClientKeyPair(2048);
    });
    const pairs = await Promise.all(Array.from({ length: 20 }, () => holder.current()));
    expect(made).toBe(1);
    expect(new Set(pairs).size).toBe(1);
    expect(pairs[0]!.bits).toBe(2048);
    expect(pairs[0]!.privateKey.extractable).toBe(false);
    expect(decodeURIComponent(pairs[0]!.publicKeyHeader)).toBe(pairs[0]!.publicKeyPem);
  });

  it('a failed generation is not cached: the next call tries again', async () => {
    let calls = 0;
    const holder = new ClientKeyHolder(async () => {
      if (++calls === 1) throw new Error('entropy');
      return generateClientKeyPair(2048);
    });
    await expect(holder.current()).rejects.toThrow('entropy');
    await expect(holder.current()).resolves.toBeTruthy();
  });

  it('refuses use after dispose', async () => {
    const holder = new ClientKeyHolder(() => generateClientKeyPair(2048));
    holder.dispose();
    await expect(holder.current()).rejects.toBeInstanceOf(DisposedError);
  });
});

describe('ServerKeyCache', () => {
  const fakeKey = (n: number) => ({ fingerprint: String(n) }) as unknown as ServerKey;

  it('shares one fetch between concurrent callers and caches until the TTL', async () => {
    let fetches = 0;
    let now = 0;
    const cache = new ServerKeyCache(async () => fakeKey(++fetches), 1000, () => now);
    await Promise.all(Array.from({ length: 10 }, () => cache.get()));
    expect(fetches).toBe(1);
    now = 999;
    await cache.get();
    expect(fetches).toBe(1);
    now = 1000;
    expect((await cache.get()).fingerprint).toBe('2');
  });

  it('does not cache a failed fetch', async () => {
    let fetches = 0;
    const cache = new ServerKeyCache(async () => {
      if (++fetches === 1) throw new Error('down');
      return fakeKey(fetches);
    }, 1000);
    await expect(cache.get()).rejects.toThrow('down');
    expect((await cache.get()).fingerprint).toBe('2');
  });

  it('a fetch that settles after clear() (a dispose) leaves its key to its caller: nothing is cached', async () => {
    let answer!: (key: ServerKey) => void;
    // A fetch that ignores its signal: it answers after the clear, as a response already on its way does.
    const cache = new ServerKeyCache(() => new Promise<ServerKey>((resolve) => (answer = resolve)), 1000);
    const waiting = cache.get();
    cache.clear();
    answer(fakeKey(1));
    expect((await waiting).fingerprint).toBe('1');
    expect(cache.peek()).toBeUndefined();
    expect(cache.fresh()).toBeUndefined();
  });
});
