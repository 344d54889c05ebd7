import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../../../src/keys/client-keys.js';
import { pemToDer } from '../../../src/crypto/pem.js';
import { spkiFingerprint } from '../../../src/crypto/fingerprint.js';
import { KeyFileError, KeyPasswordError } from '../../../src/errors.js';
import { openKeyDir } from '../../../src/keys/files/key-dir.js';
import { generateKeyFiles, loadKeyFiles, saveKeyFiles } from '../../../src/keys/files/key-files.js';
import { assertNoKeyPair } from '../../../src/keys/files/key-dir.js';
import { KnownRouters } from '../../../src/keys/files/known-routers.js';
import { KEYFILE_PASSWORD, KEYFILES_DIR, hasOpenssl, openssl, readKeyfile, withTempDir } from '../../helpers/keyfiles.js';
import { rejection } from '../../helpers/rejection.js';

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

describe('key directory ownership and links', () => {
  const posix = process.platform !== 'win32';
  const FP = 'ab'.repeat(32);
  /** Everything in `dir`, as names and what each is (contents for files, targets for links). */
  const listing = (dir: string) =>
    readdirSync(dir)
      .sort()
      .map((name) => {
        const path = join(dir, name);
        return lstatSync(path).isSymbolicLink() ? `${name} -> ${readlinkSync(path)}` : `${name}: ${readFileSync(path, 'utf8').length}`;
      });

  it.runIf(posix).each(['770', '707', '720', '702', '777'])('refuses a keyDir with mode %s (writable by others), and changes nothing in it', (octal) =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048 });
      writeFileSync(join(dir, 'known_routers.json'), JSON.stringify({ version: 1, routers: { 'https://r': { fingerprint: FP } } }), { mode: 0o600 });
      chmodSync(dir, parseInt(octal, 8));
      const before = listing(dir);
      const refused = await rejection(openKeyDir(dir, { bits: 2048 }));
      expect(refused).toBeInstanceOf(KeyFileError);
      expect(refused.message).toContain(`chmod 700 ${dir}`);
      expect(refused.message).toMatch(/writable by other users/);
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }))).rejects.toThrow(/chmod 700/);
      await expect(assertNoKeyPair(dir)).rejects.toThrow(/chmod 700/);
      // The trust store is neither believed nor written there.
      await expect(new KnownRouters(dir).get('https://r')).rejects.toBeInstanceOf(KeyFileError);
      await expect(new KnownRouters(dir).set('https://other', FP)).rejects.toBeInstanceOf(KeyFileError);
      expect(listing(dir)).toEqual(before);
      chmodSync(dir, 0o700);
      await openKeyDir(dir, { bits: 2048 });
      expect(await new KnownRouters(dir).get('https://r')).toBe(FP);
    }),
  );

  it.runIf(posix)('0755 is fine (not writable by others), and a missing keyDir is created 0700', () =>
    withTempDir(async (tmp) => {
      chmodSync(tmp, 0o755);
      await openKeyDir(tmp, { bits: 2048 });
      const created = join(tmp, 'a', 'b');
      await new KnownRouters(created).set('https://r', FP);
      expect(mode(created)).toBe(0o700);
      expect(mode(join(created, 'known_routers.json'))).toBe(0o600);
    }));

  it.runIf(posix && process.getuid?.() === 0)('refuses a keyDir owned by another user', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048 });
      const before = listing(dir);
      chownSync(dir, 4242, 4242);
      const refused = await rejection(openKeyDir(dir, { bits: 2048 }));
      expect(refused).toBeInstanceOf(KeyFileError);
      expect(refused.message).toMatch(/belongs to another user \(uid 4242/);
      await expect(new KnownRouters(dir).get('https://r')).rejects.toThrow(/another user/);
      expect(listing(dir)).toEqual(before);
    }));

  it.runIf(posix)('a keyDir that is a link to a safe directory is followed; a link to an unsafe one or to nothing is refused', () =>
    withTempDir(async (tmp) => {
      const real = join(tmp, 'real');
      mkdirSync(real, { mode: 0o700 });
      const link = join(tmp, 'keys');
      symlinkSync(real, link);
      const pair = await openKeyDir(link, { bits: 2048 });
      expect(readdirSync(real).sort()).toEqual(['private_key.pem', 'public_key.pem']);
      expect((await openKeyDir(link, { bits: 2048 })).fingerprint).toBe(pair.fingerprint);
      chmodSync(real, 0o777);
      await expect(openKeyDir(link, { bits: 2048 })).rejects.toThrow(/writable by other users/);
      const dangling = join(tmp, 'dangling');
      symlinkSync(join(tmp, 'nowhere'), dangling);
      await expect(openKeyDir(dangling, { bits: 2048 })).rejects.toThrow(/symbolic link to nothing/);
      expect(readdirSync(tmp).sort()).toEqual(['dangling', 'keys', 'real']);
    }));

  it('refuses a private_key.pem that is a link (even to a valid key), and leaves the link as it is', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      mkdirSync(dir, { mode: 0o700 });
      const target = join(tmp, 'elsewhere.pem');
      writeFileSync(target, readKeyfile('plain.pem'), { mode: 0o600 });
      symlinkSync(target, join(dir, 'private_key.pem'));
      const refused = await rejection(openKeyDir(dir, { bits: 2048 }));
      expect(refused).toBeInstanceOf(KeyFileError);
      expect(refused.message).toMatch(/private_key\.pem is a symbolic link/);
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }))).rejects.toThrow(/symbolic link/);
      await expect(assertNoKeyPair(dir)).rejects.toThrow(/symbolic link/);
      expect(listing(dir)).toEqual([`private_key.pem -> ${target}`]);
      expect(readFileSync(target, 'utf8')).toBe(readKeyfile('plain.pem'));
    }));

  it('a dangling private_key.pem link is not taken for a missing key: no key is generated, the link stays', () =>
    withTempDir(async (dir) => {
      symlinkSync(join(dir, 'gone.pem'), join(dir, 'private_key.pem'));
      await expect(openKeyDir(dir, { bits: 2048 })).rejects.toThrow(/private_key\.pem is a symbolic link/);
      expect(listing(dir)).toEqual([`private_key.pem -> ${join(dir, 'gone.pem')}`]);
    }));

  it('public_key.pem and known_routers.json links are refused and never replaced', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      await openKeyDir(dir, { bits: 2048 });
      const outside = join(tmp, 'outside.json');
      writeFileSync(outside, JSON.stringify({ version: 1, routers: { 'https://r': { fingerprint: FP } } }));
      symlinkSync(outside, join(dir, 'known_routers.json'));
      await expect(new KnownRouters(dir).get('https://r')).rejects.toThrow(/known_routers\.json is a symbolic link/);
      await expect(new KnownRouters(dir).set('https://r', 'cd'.repeat(32))).rejects.toThrow(/symbolic link/);
      expect(lstatSync(join(dir, 'known_routers.json')).isSymbolicLink()).toBe(true);
      expect(readFileSync(outside, 'utf8')).toContain(FP);

      const pub = join(dir, 'public_key.pem');
      const pubTarget = join(tmp, 'pub.pem');
      writeFileSync(pubTarget, readFileSync(pub));
      rmSync(pub);
      symlinkSync(pubTarget, pub);
      await expect(openKeyDir(dir, { bits: 2048 })).rejects.toThrow(/public_key\.pem is a symbolic link/);
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }))).rejects.toThrow(/public_key\.pem is a symbolic link/);
      expect(lstatSync(pub).isSymbolicLink()).toBe(true);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-') || f.endsWith('.nomyo-bak'))).toEqual([]);
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
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { hooks: { beforeRename: crash } })).rejects.toThrow('crash');
      expect(snapshot(join(dir, 'private_key.pem'))).toEqual(priv);
      expect(snapshot(join(dir, 'public_key.pem'))).toEqual(pub);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    }));

  it('a crash between the two files is repaired from the private key on the next load', () =>
    withTempDir(async (dir) => {
      const old = await openKeyDir(dir, { bits: 2048 });
      // What a process killed between the two renames leaves: both backups, the new private key
      // beside the old public key.
      const next = await generateClientKeyPair(2048, { extractable: true });
      for (const name of ['private_key.pem', 'public_key.pem']) copyFileSync(join(dir, name), join(dir, `${name}.nomyo-bak`));
      const elsewhere = join(dir, 'elsewhere');
      await saveKeyFiles(elsewhere, next);
      renameSync(join(elsewhere, 'private_key.pem'), join(dir, 'private_key.pem'));
      rmSync(elsewhere, { recursive: true });
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'private_key.pem.nomyo-bak', 'public_key.pem', 'public_key.pem.nomyo-bak']);
      const warnings: string[] = [];
      const loaded = await openKeyDir(dir, { bits: 2048, onWarning: (w) => warnings.push(w) });
      expect(loaded.fingerprint).toBe(next.fingerprint);
      expect(loaded.fingerprint).not.toBe(old.fingerprint);
      expect(warnings.join()).toMatch(/interrupted key rotation/);
      expect(await spkiFingerprint(pemToDer(readFileSync(join(dir, 'public_key.pem'), 'utf8'), 'PUBLIC KEY'))).toBe(next.fingerprint);
      // The backups (the rotated-away private key among them) go once the pair is whole again.
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('a write that fails between the two files (a full disk) puts the pair back as it was', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048 });
      const priv = readFileSync(join(dir, 'private_key.pem'));
      const pub = readFileSync(join(dir, 'public_key.pem'));
      const failOnPublic = (target: string) => {
        if (target.endsWith('public_key.pem')) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      };
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { hooks: { beforeRename: failOnPublic } })).rejects.toThrow('no space');
      expect(readFileSync(join(dir, 'private_key.pem')).equals(priv)).toBe(true);
      expect(readFileSync(join(dir, 'public_key.pem')).equals(pub)).toBe(true);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('a completed save removes the backups', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048, password: PASSWORD });
      const next = await saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { password: PASSWORD });
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
    const pair = await loadKeyFiles(path, join(KEYFILES_DIR, 'public.pem'), { password });
    expect(pair.fingerprint).toBe(await expected());
    expect(pair.privateKey.extractable).toBe(false);
    if (password) await expect(loadKeyFiles(path, undefined, { password: 'wrong password!' })).rejects.toBeInstanceOf(KeyPasswordError);
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
