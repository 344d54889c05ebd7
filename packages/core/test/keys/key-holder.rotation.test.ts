import { describe, expect, it } from 'vitest';
import { generateClientKeyPair, type ClientKeyPair } from '../../src/keys/client-keys.js';
import { ClientKeyHolder, type PendingKeyPair } from '../../src/keys/key-holder.js';
import { DisposedError } from '../../src/errors.js';

const fakePair = (n: number) => ({ fingerprint: `pair-${n}` }) as unknown as ClientKeyPair;

/** A holder on a fake clock, counting what it makes; `gate` holds activations until released. */
function setup(interval = 1000) {
  let now = 0;
  let made = 0;
  const errors: unknown[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  let failNext = false;
  const holder = new ClientKeyHolder(async () => fakePair(++made), {
    rotationInterval: interval,
    now: () => now,
    timer: false,
    onError: (e) => errors.push(e),
    prepare: async (): Promise<PendingKeyPair> => {
      if (failNext) {
        failNext = false;
        throw new Error('disk full');
      }
      const pair = fakePair(++made);
      return { activate: async () => (await gate, pair) };
    },
  });
  return {
    holder,
    errors,
    at: (t: number) => (now = t),
    made: () => made,
    failOnce: () => (failNext = true),
    hold: () => (gate = new Promise((r) => (release = r))),
    release: () => release(),
  };
}

describe('ClientKeyHolder rotation (fake clock)', () => {
  it('prepares the next pair half-way, swaps it in at the interval, and never makes a caller wait', async () => {
    const t = setup();
    expect((await t.holder.current()).fingerprint).toBe('pair-1');
    t.at(400);
    await t.holder.current();
    expect(t.made()).toBe(1);
    t.at(500);
    await t.holder.current();
    await t.holder.settled();
    expect(t.made()).toBe(2); // prepared, not in use
    expect((await t.holder.current()).fingerprint).toBe('pair-1');
    t.hold();
    t.at(1000);
    // Due, but the switch is still running: the current pair is handed out at once.
    expect((await t.holder.current()).fingerprint).toBe('pair-1');
    expect((await t.holder.current()).fingerprint).toBe('pair-1');
    t.release();
    await t.holder.settled();
    expect((await t.holder.current()).fingerprint).toBe('pair-2');
    // The clock restarts from the switch.
    t.at(1400);
    await t.holder.current();
    await t.holder.settled();
    expect(t.made()).toBe(2);
    t.at(2000);
    await t.holder.current();
    await t.holder.settled();
    expect((await t.holder.current()).fingerprint).toBe('pair-3');
    expect(t.errors).toEqual([]);
  });

  it('a failed preparation is reported, the current pair stays, and it is retried after a back-off', async () => {
    const t = setup();
    await t.holder.current();
    t.failOnce();
    t.at(1000);
    await t.holder.current();
    await t.holder.settled();
    expect(t.errors.map((e) => (e as Error).message)).toEqual(['disk full']);
    expect((await t.holder.current()).fingerprint).toBe('pair-1');
    t.at(1500); // still backing off
    await t.holder.current();
    await t.holder.settled();
    expect(t.made()).toBe(1);
    t.at(2000);
    await t.holder.current();
    await t.holder.settled();
    expect((await t.holder.current()).fingerprint).toBe('pair-2');
  });

  it('0 disables rotation', async () => {
    const t = setup(0);
    await t.holder.current();
    t.at(10 ** 12);
    await t.holder.current();
    await t.holder.settled();
    expect(t.made()).toBe(1);
  });

  it('a pair replaced explicitly restarts the clock and drops the prepared one', async () => {
    const t = setup();
    await t.holder.current();
    t.at(600);
    await t.holder.current();
    await t.holder.settled();
    await t.holder.replace(fakePair(99));
    t.at(1000);
    expect((await t.holder.current()).fingerprint).toBe('pair-99');
    await t.holder.settled();
    expect((await t.holder.current()).fingerprint).toBe('pair-99');
  });

  it('dispose during a switch: the switch never installs, every later call is DisposedError, twice is harmless', async () => {
    const t = setup();
    await t.holder.current();
    t.hold();
    t.at(1000);
    await t.holder.current();
    t.holder.dispose();
    t.holder.dispose();
    t.release();
    await t.holder.settled();
    expect(t.holder.peek()).toBeUndefined();
    await expect(t.holder.current()).rejects.toBeInstanceOf(DisposedError);
    await expect(t.holder.replace(fakePair(5))).rejects.toBeInstanceOf(DisposedError);
    expect(t.errors).toEqual([]);
  });
});

describe('ClientKeyHolder rotation (real timer)', () => {
  it('rotates on its own, without any call, with real keys', async () => {
    const holder = new ClientKeyHolder(() => generateClientKeyPair(2048), {
      rotationInterval: 300,
      prepare: async () => {
        const pair = await generateClientKeyPair(2048);
        return { activate: async () => pair };
      },
    });
    const first = await holder.current();
    await new Promise((r) => setTimeout(r, 900));
    expect(holder.peek()!.fingerprint).not.toBe(first.fingerprint);
    holder.dispose();
  });
});
