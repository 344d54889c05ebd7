import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../src/keys/client-keys.js';
import { pemToDer } from '../src/crypto/pem.js';
import { spkiFingerprint } from '../src/crypto/fingerprint.js';
import { KeyFileError, KeyPasswordError } from '../src/errors.js';
import { openKeyDir } from '../src/keys/files/key-dir.js';
import { generateKeyFiles, loadKeyFiles, saveKeyFiles } from '../src/keys/files/key-files.js';
import { KEYFILE_PASSWORD, KEYFILES_DIR, hasOpenssl, openssl, readKeyfile, withTempDir } from './helpers/keyfiles.js';
import { rejection } from './helpers/rejection.js';

const PASSWORD = 'a long enough password';
const mode = (path: string) => statSync(path).mode & 0o777;
const snapshot = (path: string) => ({ bytes: readFileSync(path), mtimeMs: statSync(path).mtimeMs });


describe('key directory', () => {
  it('generates 0700 / 0600 / 0644 files once, then loads the same key', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const first = await openKeyDir(dir, { bits: 2048 });
      expect(mode(dir)).toBe(0o700);
      expect(mode(join(dir, 'private_key.pem'))).toBe(0o600);
      expect(mode(join(dir, 'public_key.pem'))).toBe(0o644);
      expect(first.privateKey.extractable).toBe(false);
      expect(readFileSync(join(dir, 'private_key.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      const again = await openKeyDir(dir, { bits: 2048 });
      expect(again.fingerprint).toBe(first.fingerprint);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('encrypts with a password; a wrong or missing password leaves the file byte-identical', () =>
    withTempDir(async (dir) => {
      const pair = await openKeyDir(dir, { bits: 2048, password: PASSWORD });
      const file = join(dir, 'private_key.pem');
      expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      const before = snapshot(file);
      const wrong = await rejection(openKeyDir(dir, { bits: 2048, password: 'not the password' }));
      expect(wrong).toBeInstanceOf(KeyPasswordError);
      expect(wrong.message).toBe('wrong password or corrupt key file');
      expect(wrong.message).not.toContain('not the password');
      await expect(openKeyDir(dir, { bits: 2048 })).rejects.toBeInstanceOf(KeyPasswordError);
      expect(snapshot(file)).toEqual(before);
      expect((await openKeyDir(dir, { bits: 2048, password: PASSWORD })).fingerprint).toBe(pair.fingerprint);
    }));

  it('refuses passwords under 8 characters', () =>
    withTempDir(async (dir) => {
      await expect(generateKeyFiles(dir, 2048, { password: 'short' })).rejects.toThrow(/at least 8 characters/);
      expect(readdirSync(dir)).toEqual([]);
    }));

  it.each([
    ['corrupt', () => '-----BEGIN PRIVATE KEY-----\nMIIBroken\n-----END PRIVATE KEY-----\n'],
    ['not RSA', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['RSA-1024', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string],
    ['PKCS#1', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string],
  ])('a %s key file is a KeyFileError and is never replaced', (_label, make) =>
    withTempDir(async (dir) => {
      const file = join(dir, 'private_key.pem');
      writeFileSync(file, make(), { mode: 0o600 });
      const before = snapshot(file);
      const err = await rejection(openKeyDir(dir, { bits: 2048 }));
      expect(err).toBeInstanceOf(KeyFileError);
      expect(err).not.toBeInstanceOf(KeyPasswordError);
      expect(snapshot(file)).toEqual(before);
      expect(readdirSync(dir)).toEqual(['private_key.pem']);
    }),
  );

  it('refuses a public key without its private key, and a public key that does not match', () =>
    withTempDir(async (dir) => {
      const other = (await generateClientKeyPair(2048)).publicKeyPem;
      writeFileSync(join(dir, 'public_key.pem'), other);
      await expect(openKeyDir(dir, { bits: 2048 })).rejects.toThrow(/no private key/);
      writeFileSync(join(dir, 'private_key.pem'), readKeyfile('plain.pem'));
      await expect(openKeyDir(dir, { bits: 2048 })).rejects.toThrow(/does not match the private key/);
      await expect(loadKeyFiles(join(dir, 'private_key.pem'), join(dir, 'public_key.pem'))).rejects.toBeInstanceOf(KeyFileError);
      expect(readFileSync(join(dir, 'public_key.pem'), 'utf8')).toBe(other);
    }));

  it('warns about a private key readable by others', () =>
    withTempDir(async (dir) => {
      writeFileSync(join(dir, 'private_key.pem'), readKeyfile('plain.pem'), { mode: 0o644 });
      const warnings: string[] = [];
      await openKeyDir(dir, { bits: 2048, onWarning: (w) => warnings.push(w) });
      expect(warnings.join()).toMatch(/readable by other users/);
    }));
});

describe('atomic writes', () => {
  it('a crash between write and rename leaves the old key byte-identical and no temporary file', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048 });
      const priv = snapshot(join(dir, 'private_key.pem'));
      const pub = snapshot(join(dir, 'public_key.pem'));
      const crash = () => {
        throw new Error('crash');
      };
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, true), { hooks: { beforeRename: crash } })).rejects.toThrow('crash');
      expect(snapshot(join(dir, 'private_key.pem'))).toEqual(priv);
      expect(snapshot(join(dir, 'public_key.pem'))).toEqual(pub);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    }));

  it('a crash between the two files is repaired from the private key on the next load', () =>
    withTempDir(async (dir) => {
      const old = await openKeyDir(dir, { bits: 2048 });
      const next = await generateClientKeyPair(2048, true);
      const crashOnPublic = (target: string) => {
        if (target.endsWith('public_key.pem')) throw new Error('crash');
      };
      await expect(saveKeyFiles(dir, next, { hooks: { beforeRename: crashOnPublic } })).rejects.toThrow('crash');
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'private_key.pem.bak', 'public_key.pem', 'public_key.pem.bak']);
      const warnings: string[] = [];
      const loaded = await openKeyDir(dir, { bits: 2048, onWarning: (w) => warnings.push(w) });
      expect(loaded.fingerprint).toBe(next.fingerprint);
      expect(loaded.fingerprint).not.toBe(old.fingerprint);
      expect(warnings.join()).toMatch(/interrupted key rotation/);
      expect(await spkiFingerprint(pemToDer(readFileSync(join(dir, 'public_key.pem'), 'utf8'), 'PUBLIC KEY'))).toBe(next.fingerprint);
    }));

  it('a completed save removes the backups', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048, password: PASSWORD });
      const next = await saveKeyFiles(dir, await generateClientKeyPair(2048, true), { password: PASSWORD });
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
      expect((await openKeyDir(dir, { bits: 2048, password: PASSWORD })).fingerprint).toBe(next.fingerprint);
      expect(next.privateKey.extractable).toBe(false);
    }));
});

describe('interop', () => {
  const expected = () => spkiFingerprint(pemToDer(readKeyfile('public.pem'), 'PUBLIC KEY'));
  const files = readdirSync(KEYFILES_DIR).filter((f) => f.endsWith('.pem') && f !== 'public.pem');

  it.each(files)('loads %s (with public.pem, which must match)', async (name) => {
    const path = join(KEYFILES_DIR, name);
    const before = readFileSync(path);
    const password = name === 'plain.pem' ? undefined : KEYFILE_PASSWORD;
    const pair = await loadKeyFiles(path, join(KEYFILES_DIR, 'public.pem'), password);
    expect(pair.fingerprint).toBe(await expected());
    expect(pair.privateKey.extractable).toBe(false);
    if (password) await expect(loadKeyFiles(path, undefined, 'wrong password!')).rejects.toBeInstanceOf(KeyPasswordError);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('openssl reads what we write, and we read what openssl writes', () =>
    withTempDir(async (dir) => {
      const pair = await generateKeyFiles(join(dir, 'ours'), 2048, { password: PASSWORD });
      const pub = openssl(['pkey', '-in', join(dir, 'ours', 'private_key.pem'), '-passin', 'env:NOMYO_TEST_PASS', '-pubout', '-outform', 'DER'], PASSWORD);
      expect(pub.status, pub.stderr).toBe(0);
      expect(await spkiFingerprint(new Uint8Array(pub.stdout))).toBe(pair.fingerprint);

      mkdirSync(join(dir, 'theirs'));
      const key = join(dir, 'theirs', 'private_key.pem');
      const gen = openssl(
        ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-aes-256-cbc', '-pass', 'env:NOMYO_TEST_PASS', '-out', key],
        PASSWORD,
      );
      expect(gen.status, gen.stderr).toBe(0);
      const theirPub = openssl(['pkey', '-in', key, '-passin', 'env:NOMYO_TEST_PASS', '-pubout', '-outform', 'DER'], PASSWORD);
      const loaded = await openKeyDir(join(dir, 'theirs'), { bits: 2048, password: PASSWORD });
      expect(loaded.fingerprint).toBe(await spkiFingerprint(new Uint8Array(theirPub.stdout)));
    }));
});
