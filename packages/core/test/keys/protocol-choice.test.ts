/**
 * Choosing the wire version (docs/protocol.md): the X-Nomyo-Protocol parser, the `protocol` option,
 * and the downgrade memory, in memory and in known_routers.json (whose older files still load).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecureCompletionClient } from '../../src/client/secure-completion-client.js';
import { InvalidArgumentError, KeyFileError, SecurityError } from '../../src/errors.js';
import { KnownRouters } from '../../src/keys/files/known-routers.js';
import type { TrustStore } from '../../src/keys/pinning.js';
import { chooseProtocol, ProtocolMemory } from '../../src/keys/protocol-choice.js';
import type { ServerKey } from '../../src/keys/server-key.js';
import { formatProtocolHeader, parseProtocolHeader } from '../../src/protocol/versions.js';
import { withTempDir } from '../helpers/keyfiles.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const ORIGIN = 'https://router.example';
const key = (fingerprint: string, protocols: (1 | 2)[]) => ({ fingerprint, protocols }) as unknown as ServerKey;

describe('parseProtocolHeader', () => {
  it.each([
    ['1, 2', [1, 2]],
    ['1,2', [1, 2]],
    ['2', [1, 2]],
    ['\t2 ,1 ', [1, 2]],
    ['2,2,9999', [1, 2]],
    ['1, 2, 3', [1, 2]],
    ['junk, 2', [1, 2]],
    ['1', [1]],
    ['', [1]],
    [' ', [1]],
    [',,,', [1]],
    ['02', [1]],
    ['2.0', [1]],
    ['+2', [1]],
    ['1 2', [1]],
    ['v2', [1]],
    ['\u00a02', [1]],
    ['\uff12', [1]],
    ['2;q=1', [1]],
  ])('%j → %j', (value, expected) => {
    expect(parseProtocolHeader(value)).toEqual(expected);
  });

  it('no header means v1 only', () => {
    expect(parseProtocolHeader(null)).toEqual([1]);
    expect(parseProtocolHeader(undefined)).toEqual([1]);
  });

  it('an over-long value is not looked at (10 kB of commas, or a 2 hidden at the end of one)', () => {
    expect(parseProtocolHeader(','.repeat(10_000))).toEqual([1]);
    expect(parseProtocolHeader(`${' '.repeat(300)}2`)).toEqual([1]);
    expect(parseProtocolHeader(`2,${'1,'.repeat(5_000)}`)).toEqual([1]);
  });

  it('formats what a router sends', () => {
    expect(formatProtocolHeader(2)).toBe('1, 2');
    expect(formatProtocolHeader(1)).toBe('1');
    expect(parseProtocolHeader(formatProtocolHeader(2))).toEqual([1, 2]);
  });
});

describe('the protocol option', () => {
  it.each([3, 0, '2', 'AUTO', 'v2', null, true, 2.5, [2], {}])('%j is an InvalidArgumentError at construction', (value) => {
    expect(() => new SecureCompletionClient({ routerUrl: ORIGIN, protocol: value as never })).toThrow(InvalidArgumentError);
  });

  it.each(['auto', 1, 2] as const)('%j is taken', (value) => {
    expect(new SecureCompletionClient({ routerUrl: ORIGIN, protocol: value }).protocol).toBe(value);
  });

  it("defaults to 'auto'", () => {
    expect(new SecureCompletionClient({ routerUrl: ORIGIN }).protocol).toBe('auto');
  });
});

describe('chooseProtocol', () => {
  it.each([
    ['auto', [1, 2], 2],
    ['auto', [1], 1],
    [2, [1, 2], 2],
    [1, [1, 2], 1],
    [1, [1], 1],
  ] as const)('option %j, router advertises %j → v%i', (option, protocols, expected) => {
    expect(chooseProtocol(option, key(A, [...protocols]), ORIGIN)).toBe(expected);
  });

  it('protocol: 2 refuses a router that does not advertise 2, saying so', () => {
    expect(() => chooseProtocol(2, key(A, [1]), ORIGIN)).toThrow(SecurityError);
    expect(() => chooseProtocol(2, key(A, [1]), ORIGIN)).toThrow(/protocol: 2 is required.*router\.example.*nothing was sent/);
  });
});

describe('ProtocolMemory (downgrade)', () => {
  it('once a key advertised v2, an answer for it without v2 is refused for the client life, saying how to accept it', async () => {
    const memory = new ProtocolMemory(ORIGIN, 'auto');
    await memory.check(key(A, [1]));
    await memory.check(key(A, [1, 2]));
    const err = (await memory.check(key(A, [1])).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toContain(ORIGIN);
    expect(err.message).toContain(A);
    expect(err.message).toMatch(/downgrade/);
    expect(err.message).toMatch(/nothing was sent/);
    expect(err.message).toContain('protocol: 1');
    expect(err.message).toContain('create a new client');
    // Another key of the router (a rotation, which pinning let through) is refused the same way: the
    // memory is the router's, and a rotation is when a proxy would strip the header of a new key.
    const rotated = (await memory.check(key(B, [1])).catch((e: unknown) => e)) as Error;
    expect(rotated).toBeInstanceOf(SecurityError);
    expect(rotated.message).toContain(B);
    expect(rotated.message).toMatch(/a new key does not reset this/);
    await memory.check(key(B, [1, 2]));
    await memory.check(key(A, [1, 2]));
  });

  it('protocol: 2 refuses too; protocol: 1 accepts the downgrade deliberately', async () => {
    for (const [option, refused] of [[2, true], [1, false]] as const) {
      const memory = new ProtocolMemory(ORIGIN, option);
      await memory.check(key(A, [1, 2]));
      const result = await memory.check(key(A, [1])).then(() => 'accepted', (e: unknown) => e);
      if (refused) expect(result).toBeInstanceOf(SecurityError);
      else expect(result).toBe('accepted');
    }
  });

  it('remembers through the trust store: a new client refuses, naming the file and `nomyo keys trust`', async () => {
    const spoke = new Set<string>();
    const store: TrustStore = {
      location: '/k/known_routers.json',
      get: async () => A,
      set: async () => undefined,
      spokeV2: async (origin) => [...spoke].some((one) => one.startsWith(`${origin} `)),
      rememberV2: async (origin, fp) => void spoke.add(`${origin} ${fp}`),
    };
    await new ProtocolMemory(ORIGIN, 'auto', async () => store).check(key(A, [1, 2]));
    expect([...spoke]).toEqual([`${ORIGIN} ${A}`]);
    const err = (await new ProtocolMemory(ORIGIN, 'auto', async () => store).check(key(A, [1])).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toContain('/k/known_routers.json');
    expect(err.message).toContain(`nomyo keys trust --url ${ORIGIN} --allow-v1`);
    // A new client meeting the router's next key (a rotation) refuses it too.
    const rotated = await new ProtocolMemory(ORIGIN, 'auto', async () => store).check(key(B, [1])).catch((e: unknown) => e);
    expect(rotated).toBeInstanceOf(SecurityError);
    // Emptied meanwhile (`nomyo keys trust --allow-v1` while the router still speaks v2): the next
    // fetch that advertises v2 records it again, though this client knew it already.
    const known = new ProtocolMemory(ORIGIN, 'auto', async () => store);
    await known.check(key(A, [1, 2]));
    spoke.clear();
    await known.check(key(A, [1, 2]));
    expect([...spoke]).toEqual([`${ORIGIN} ${A}`]);
    // A store without the downgrade methods (a TrustStore from before v2) remembers nothing.
    const plain: TrustStore = { location: 'x', get: async () => A, set: async () => undefined };
    await new ProtocolMemory(ORIGIN, 'auto', async () => plain).check(key(A, [1, 2]));
    await new ProtocolMemory(ORIGIN, 'auto', async () => plain).check(key(A, [1]));
  });
});

describe('KnownRouters: protocol 2 memory', () => {
  const read = (dir: string) => JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8'));

  it('records protocol 2 for any key the caller trusts, with or without a trust entry (a pin); set() keeps it, forgetV2() and delete() forget it', () =>
    withTempDir(async (dir) => {
      const known = new KnownRouters(dir);
      expect(await known.spokeV2(ORIGIN)).toBe(false);
      // A pinned client has no trust entry: the fact is recorded all the same.
      await known.rememberV2(ORIGIN, A);
      expect(await new KnownRouters(dir).spokeV2(ORIGIN)).toBe(true);
      expect(await known.get(ORIGIN)).toBeUndefined();
      expect(await known.spokeV2('https://other:1')).toBe(false);
      expect(read(dir)).toEqual({ version: 1, routers: {}, spokeV2: { [ORIGIN]: { [A]: expect.any(String) } } });
      // Another key of the same router (pinned after a rotation) is recorded beside it.
      await known.rememberV2(ORIGIN, B);
      expect(Object.keys(read(dir).spokeV2[ORIGIN])).toEqual([A, B]);
      // Trusting another key keeps it: a re-trust after a rotation is no way to drop protocol 2.
      await known.set(ORIGIN, B);
      expect(await known.spokeV2(ORIGIN)).toBe(true);
      await known.forgetV2(ORIGIN);
      expect(await known.spokeV2(ORIGIN)).toBe(false);
      expect(await known.get(ORIGIN)).toBe(B);
      await known.rememberV2(ORIGIN, A);
      await known.delete(ORIGIN);
      expect(await known.spokeV2(ORIGIN)).toBe(false);
    }));

  it('loads a file written before v2 (no spokeV2), and keeps its entries', () =>
    withTempDir(async (dir) => {
      const file = join(dir, 'known_routers.json');
      writeFileSync(file, JSON.stringify({ version: 1, routers: { [ORIGIN]: { fingerprint: A, firstSeen: '2025-01-01T00:00:00.000Z' } } }), { mode: 0o600 });
      const known = new KnownRouters(dir);
      expect(await known.get(ORIGIN)).toBe(A);
      expect(await known.spokeV2(ORIGIN)).toBe(false);
      await known.rememberV2(ORIGIN, A);
      expect(read(dir).routers[ORIGIN]).toEqual({ fingerprint: A, firstSeen: '2025-01-01T00:00:00.000Z' });
      expect(await new KnownRouters(dir).spokeV2(ORIGIN)).toBe(true);
    }));

  it('reads v2Since in an entry (written by 0.x), and moves it to spokeV2 on the next write', () =>
    withTempDir(async (dir) => {
      const since = '2026-01-01T00:00:00.000Z';
      writeFileSync(join(dir, 'known_routers.json'), JSON.stringify({ version: 1, routers: { [ORIGIN]: { fingerprint: A, firstSeen: since, v2Since: since } } }), { mode: 0o600 });
      const known = new KnownRouters(dir);
      expect(await known.spokeV2(ORIGIN)).toBe(true);
      await known.rememberV2('https://other:1', B);
      expect(read(dir)).toEqual({
        version: 1,
        routers: { [ORIGIN]: { fingerprint: A, firstSeen: since } },
        spokeV2: { [ORIGIN]: { [A]: since }, 'https://other:1': { [B]: expect.any(String) } },
      });
    }));

  it.each([
    ['a damaged v2Since', { routers: { [ORIGIN]: { fingerprint: A, v2Since: 12 } } }],
    ['a damaged spokeV2', { routers: {}, spokeV2: [] }],
    ['a spokeV2 fingerprint that is not one', { routers: {}, spokeV2: { [ORIGIN]: { nope: '2026' } } }],
    ['a spokeV2 time that is not a string', { routers: {}, spokeV2: { [ORIGIN]: { [A]: null } } }],
  ])('%s is a corrupt store, never silently dropped', (_what, data) =>
    withTempDir(async (dir) => {
      writeFileSync(join(dir, 'known_routers.json'), JSON.stringify(data), { mode: 0o600 });
      await expect(new KnownRouters(dir).spokeV2(ORIGIN)).rejects.toBeInstanceOf(KeyFileError);
    }));
});
