/**
 * Key changes racing dispose and explicit replacement (fake clock): dispose waits for a rotation
 * already running and nothing is written after it; a queued rotation never replaces a pair the user
 * installed meanwhile; a pair made while disposing never becomes usable.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateClientKeyPair, type ClientKeyPair } from '../../src/keys/client-keys.js';
import { ClientKeyHolder, type PendingKeyPair } from '../../src/keys/key-holder.js';
import { openKeyDir } from '../../src/keys/files/key-dir.js';
import { saveKeyFiles } from '../../src/keys/files/key-files.js';
import { ClientKeySource } from '../../src/keys/key-source.js';
import { DisposedError } from '../../src/errors.js';
import { withTempDir } from '../helpers/keyfiles.js';

const fakePair = (name: string) => ({ fingerprint: name }) as unknown as ClientKeyPair;
const tick = () => new Promise((r) => setTimeout(r, 0));

/** A promise that is settled yet? (checked after letting pending callbacks run) */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10; i++) await tick();
  return settled;
}

function gate() {
  let open: () => void = () => {};
  const closed = new Promise<void>((r) => (open = r));
  return { closed, open: () => open() };
}

describe('dispose waits for key changes already running', () => {
  it('a rotation that is saving: dispose resolves only after the write, which never installs; nothing is written after', async () => {
    let now = 0;
    const saving = gate();
    const writes: string[] = [];
    let activated = false;
    const holder = new ClientKeyHolder(async () => fakePair('first'), {
      rotationInterval: 1000,
      now: () => now,
      timer: false,
      prepare: async (): Promise<PendingKeyPair> => ({
        // A slow activate, like PBKDF2 and the two atomic writes of a key directory.
        activate: async () => {
          activated = true;
          await saving.closed;
          writes.push('private_key.pem', 'public_key.pem');
          return fakePair('rotated');
        },
      }),
    });
    await holder.current();
    now = 1000;
    await holder.current(); // due: the rotation starts in the background
    for (let i = 0; i < 10 && !activated; i++) await tick();
    expect(activated).toBe(true);

    const disposed = holder.dispose();
    expect(holder.disposed).toBe(true);
    expect(holder.dispose()).toBe(disposed); // a second call is harmless: the same wait
    expect(await isSettled(disposed)).toBe(false); // still saving
    saving.open();
    await disposed;
    expect(writes).toEqual(['private_key.pem', 'public_key.pem']); // finished before dispose resolved
    expect(holder.peek()).toBeUndefined(); // the rotated pair was never installed
    await expect(holder.current()).rejects.toBeInstanceOf(DisposedError);
    for (let i = 0; i < 10; i++) await tick();
    expect(writes).toHaveLength(2);
  });

  it('a preparation still running: dispose waits for it, and its pair is never activated', async () => {
    let now = 0;
    const preparing = gate();
    let activations = 0;
    const holder = new ClientKeyHolder(async () => fakePair('first'), {
      rotationInterval: 1000,
      now: () => now,
      timer: false,
      prepare: async () => {
        await preparing.closed;
        return { activate: async () => (activations++, fakePair('next')) };
      },
    });
    await holder.current();
    now = 1000;
    await holder.current();
    const disposed = holder.dispose();
    expect(await isSettled(disposed)).toBe(false);
    preparing.open();
    await disposed;
    expect(activations).toBe(0);
    expect(holder.peek()).toBeUndefined();
  });

  it('with a real key directory: the source disposed during a slow activation never writes, and dispose waits', () =>
    withTempDir(async (dir) => {
      let now = 0;
      const source = new ClientKeySource({ bits: 2048, multiPrime: true, keyDir: dir, password: undefined, onWarning: () => {} });
      const slow = gate();
      let activating = false;
      const errors: unknown[] = [];
      const holder = new ClientKeyHolder(() => source.initial(), {
        rotationInterval: 1000,
        now: () => now,
        timer: false,
        onError: (e) => errors.push(e),
        prepare: async () => {
          const pending = await source.prepare();
          // The slow part of a real activation (PBKDF2, fsync) comes before the write here.
          return {
            activate: async () => {
              activating = true;
              await slow.closed;
              return pending.activate();
            },
          };
        },
      });
      const first = await holder.current();
      const privateKey = join(dir, 'private_key.pem');
      const before = readFileSync(privateKey);
      now = 1000;
      await holder.current();
      for (let i = 0; i < 200 && !activating; i++) await new Promise((r) => setTimeout(r, 10));
      expect(activating).toBe(true);

      // What SecureCompletionClient.dispose does.
      const disposed = Promise.all([holder.dispose(), source.dispose()]);
      expect(await isSettled(disposed)).toBe(false);
      slow.open();
      await disposed;
      expect(readFileSync(privateKey).equals(before)).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
      expect(errors).toEqual([]); // after dispose, nothing is reported
      expect(holder.peek()).toBeUndefined();
      expect(first.fingerprint).toBeTruthy();
      await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(privateKey).equals(before)).toBe(true);
    }));

  it('a key source disposed while a save encrypts its key: the save is abandoned before any file is touched, dispose waits', () =>
    withTempDir(async (dir) => {
      const source = new ClientKeySource({ bits: 2048, multiPrime: true, keyDir: dir, password: 'a long enough password', onWarning: () => {} });
      await source.initial();
      const before = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'));
      const pending = await source.prepare();
      const saving = pending.activate().catch((e: unknown) => e); // PBKDF2 600 000 first: hundreds of ms
      const disposed = source.dispose();
      expect(await isSettled(disposed)).toBe(false);
      await disposed;
      expect(await isSettled(saving)).toBe(true);
      expect(await saving).toBeInstanceOf(DisposedError);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
      expect(readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'))).toEqual(before);
      await source.dispose(); // harmless
      // Prepared before dispose, activated after: refused at once.
      const source2 = new ClientKeySource({ bits: 2048, multiPrime: true, keyDir: dir, password: 'a long enough password', onWarning: () => {} });
      const late = await source2.prepare();
      await source2.dispose();
      await expect(late.activate()).rejects.toBeInstanceOf(DisposedError);
      expect(readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'))).toEqual(before);
    }));

  it('saveKeyFiles: beforeWrite throwing leaves every file as it was, with no backup or temporary file', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048 });
      const before = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'));
      const stop = () => {
        throw new DisposedError('disposed');
      };
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { beforeWrite: stop })).rejects.toBeInstanceOf(DisposedError);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
      expect(readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'))).toEqual(before);
    }));

  it('dispose during the first generation: the caller gets DisposedError, the pair is never usable', async () => {
    const making = gate();
    const holder = new ClientKeyHolder(async () => {
      await making.closed;
      return fakePair('first');
    });
    const first = holder.current();
    const second = holder.current();
    await tick();
    const disposed = holder.dispose();
    expect(await isSettled(disposed)).toBe(false); // the generation (maybe saving to keyDir) is still running
    making.open();
    await disposed;
    await expect(first).rejects.toBeInstanceOf(DisposedError);
    await expect(second).rejects.toBeInstanceOf(DisposedError);
    expect(holder.peek()).toBeUndefined();
  });
});

describe('a queued rotation never replaces a pair installed after it was queued', () => {
  function setup() {
    let now = 0;
    let made = 0;
    const holder = new ClientKeyHolder(async () => fakePair(`pair-${++made}`), {
      rotationInterval: 1000,
      now: () => now,
      timer: false,
      prepare: async () => {
        const pair = fakePair(`pair-${++made}`);
        return { activate: async () => pair };
      },
    });
    return { holder, at: (t: number) => (now = t), made: () => made };
  }

  it('replace (loadKeys / generateKeys) then a call that finds the old pair due: the user pair stays', async () => {
    const t = setup();
    await t.holder.current();
    t.at(1000); // due
    const user = fakePair('USER');
    const replaced = t.holder.replace(user);
    const during = t.holder.current(); // still sees the old pair, due: queues a rotation behind replace
    await Promise.all([replaced, during]);
    await t.holder.settled();
    expect(t.holder.peek()).toBe(user);
    expect((await t.holder.current()).fingerprint).toBe('USER');
    // The user's pair rotates on its own clock, from its installation.
    t.at(1999);
    await t.holder.current();
    await t.holder.settled();
    expect((await t.holder.current()).fingerprint).toBe('USER');
    t.at(2000);
    await t.holder.current();
    await t.holder.settled();
    expect((await t.holder.current()).fingerprint).not.toBe('USER');
  });

  it('replace queued behind a rotation already running: the user pair wins', async () => {
    const t = setup();
    await t.holder.current();
    t.at(1000);
    await t.holder.current(); // rotation running
    const user = fakePair('USER');
    await t.holder.replace(user);
    await t.holder.settled();
    expect(t.holder.peek()).toBe(user);
  });
});
