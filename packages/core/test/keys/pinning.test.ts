import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprintBase64 } from '../../src/crypto/fingerprint.js';
import { InvalidArgumentError, KeyFileError, SecurityError } from '../../src/errors.js';
import { parseFingerprint, ServerKeyPinning, type TrustStore } from '../../src/keys/pinning.js';
import type { ServerKey } from '../../src/keys/server-key.js';
import { KnownRouters } from '../../src/keys/files/known-routers.js';
import { withTempDir } from '../helpers/keyfiles.js';

const A = 'a'.repeat(64);
const B = '0123456789abcdef'.repeat(4);
const key = (fingerprint: string) => ({ fingerprint }) as ServerKey;

describe('parseFingerprint', () => {
  it('accepts hex (any case, colons) and sha256:base64 (with or without padding)', () => {
    expect(parseFingerprint(B)).toBe(B);
    expect(parseFingerprint(B.toUpperCase())).toBe(B);
    expect(parseFingerprint(B.match(/../g)!.join(':'))).toBe(B);
    expect(parseFingerprint(fingerprintBase64(B))).toBe(B);
    expect(parseFingerprint(fingerprintBase64(B).replace(/=+$/, ''))).toBe(B);
  });

  it.each(['', 'abc', 'g'.repeat(64), A + '00', 'sha256:', 'sha256:AAAA', 'sha256:!!!!', 'md5:' + A])('refuses %j', (pin) => {
    expect(() => parseFingerprint(pin)).toThrow(InvalidArgumentError);
  });

  it('a malformed pin is refused when the pinning is made', () => {
    expect(() => new ServerKeyPinning('https://r', 'nope')).toThrow(InvalidArgumentError);
  });
});

describe('ServerKeyPinning', () => {
  it('an explicit pin accepts its key and refuses any other, naming both', async () => {
    const pinning = new ServerKeyPinning('https://r', fingerprintBase64(A));
    await pinning.check(key(A));
    const err = await pinning.check(key(B)).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toContain(A);
    expect((err as Error).message).toContain(B);
  });

  it('a list pins each of its keys (a rotation\'s old and new), and refuses any other, naming them all; an empty list is refused', async () => {
    const C = 'c'.repeat(64);
    const pinning = new ServerKeyPinning('https://r', [A, fingerprintBase64(B)]);
    await pinning.check(key(A));
    await pinning.check(key(B));
    const err = await pinning.check(key(C)).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as Error).message).toMatch(new RegExp(`presented key ${C} .*does not match serverKeyFingerprint ${A} \\(.*\\) or ${B} `));
    expect(() => new ServerKeyPinning('https://r', [])).toThrow(new InvalidArgumentError('serverKeyFingerprint must name at least one key'));
    expect(() => new ServerKeyPinning('https://r', [A, 'nope'])).toThrow(InvalidArgumentError);
  });

  it('trust on first use: stores the first key, refuses a different one with both fingerprints and how to accept it', async () => {
    const saved = new Map<string, string>();
    const store: TrustStore = { location: '/k/known_routers.json', get: async (o) => saved.get(o), set: async (o, f) => void saved.set(o, f) };
    const pinning = new ServerKeyPinning('https://r', undefined, async () => store);
    await pinning.check(key(A));
    expect(saved.get('https://r')).toBe(A);
    await pinning.check(key(A));
    const err = (await pinning.check(key(B)).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toContain(A);
    expect(err.message).toContain(B);
    expect(err.message).toContain('nomyo keys trust --url https://r');
    expect(err.message).toContain('/k/known_routers.json');
    expect(saved.get('https://r')).toBe(A);
  });

  it('an explicit pin neither reads nor writes the store', async () => {
    const store: TrustStore = { location: 'x', get: async () => B, set: async () => expect.fail('written') };
    await new ServerKeyPinning('https://r', A, async () => store).check(key(A));
  });
});

describe('KnownRouters', () => {
  it('writes known_routers.json 0600 and reads it back', () =>
    withTempDir(async (dir) => {
      const known = new KnownRouters(dir);
      expect(await known.get('https://r')).toBeUndefined();
      await Promise.all([known.set('https://r', A), known.set('https://s', B)]);
      expect(statSync(join(dir, 'known_routers.json')).mode & 0o777).toBe(0o600);
      expect(await new KnownRouters(dir).get('https://s')).toBe(B);
      expect(JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8')).routers['https://r'].fingerprint).toBe(A);
      await known.delete('https://r');
      expect(await known.get('https://r')).toBeUndefined();
    }));

  it('trust on first use keeps what a pinned client recorded of protocol 2: dropping the pin allows no downgrade', () =>
    withTempDir(async (dir) => {
      // While pinned, the client recorded that the router's key advertised protocol 2, and trusted nothing.
      await new KnownRouters(dir).rememberV2('https://r', A);
      // The pin dropped, the same key is trusted on first use: what it advertised is still known.
      await new ServerKeyPinning('https://r', undefined, async () => new KnownRouters(dir)).check(key(A));
      expect(await new KnownRouters(dir).get('https://r')).toBe(A);
      expect(await new KnownRouters(dir).spokeV2('https://r')).toBe(true);
    }));

  it('two clients sharing a key directory, trusting two routers at once, both keep theirs; a key trusted meanwhile is not replaced', () =>
    withTempDir(async (dir) => {
      const [one, two] = [new KnownRouters(dir), new KnownRouters(`${dir}/.`)];
      await Promise.all([one.trustFirst('https://r', A), two.trustFirst('https://s', B), one.rememberV2('https://r', A), two.rememberV2('https://s', B)]);
      for (const known of [one, two, new KnownRouters(dir)]) {
        expect([await known.get('https://r'), await known.get('https://s')]).toEqual([A, B]);
        expect([await known.spokeV2('https://r'), await known.spokeV2('https://s')]).toEqual([true, true]);
      }
      // Another client trusted A for https://r first: B is not trusted in its place, and is refused.
      expect(await two.trustFirst('https://r', B)).toBe(A);
      const racing: TrustStore = { location: 'x', get: async () => undefined, set: () => expect.fail('set'), trustFirst: async () => A };
      await expect(new ServerKeyPinning('https://t', undefined, async () => racing).check(key(B))).rejects.toBeInstanceOf(SecurityError);
    }));

  it('a corrupt store is an error and is not rewritten', () =>
    withTempDir(async (dir) => {
      const file = join(dir, 'known_routers.json');
      writeFileSync(file, '{"routers": {"https://r": {"fingerprint": "xyz"}}}');
      const known = new KnownRouters(dir);
      await expect(known.get('https://r')).rejects.toBeInstanceOf(KeyFileError);
      await expect(known.set('https://s', A)).rejects.toBeInstanceOf(KeyFileError);
      expect(readFileSync(file, 'utf8')).toContain('xyz');
    }));
});
