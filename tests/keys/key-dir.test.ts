import { chmodSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyFileError, KeyPasswordError, SecurityError } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, hello, KEYFILES_DIR, publicKeysSent, sleep, startTestServer, withTempDir } from './support.js';

const execFileAsync = promisify(execFile);
const READ_ONLY_CLIENT = fileURLToPath(new URL('./fixtures/read-only-dir-client.mjs', import.meta.url));

/** `command` run so that file modes bind it: root's CAP_DAC_OVERRIDE, when it has it, dropped (setpriv). */
function withoutDacOverride(command: string[]): [string, string[]] {
  const capEff = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  const full = capEff !== undefined && (BigInt(`0x${capEff}`) & (1n << 1n)) !== 0n ? ['setpriv', '--bounding-set=-dac_override', '--inh-caps=-dac_override', '--', ...command] : command;
  return [full[0]!, full.slice(1)];
}

const PASSWORD = 'correct horse battery staple';
const mode = (path: string) => statSync(path).mode & 0o777;

describe('keyDir against the reference server', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('the first client generates and saves the pair; a second client reuses it', () =>
    withTempDir(async (tmp) => {
      const keyDir = join(tmp, 'keys');
      server.clearRequests();
      const a = clientFor(server, { keyDir, keyPassword: PASSWORD });
      await a.create(hello);
      expect(mode(keyDir)).toBe(0o700);
      expect(mode(join(keyDir, 'private_key.pem'))).toBe(0o600);
      expect(mode(join(keyDir, 'public_key.pem'))).toBe(0o644);
      expect(mode(join(keyDir, 'known_routers.json'))).toBe(0o600);
      expect(readFileSync(join(keyDir, 'private_key.pem'), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      const b = clientFor(server, { keyDir, keyPassword: PASSWORD });
      await b.create(hello);
      const [first, second] = publicKeysSent(server);
      expect(second).toBe(first);
      expect(readFileSync(join(keyDir, 'public_key.pem'), 'utf8')).toBe(first);
      await Promise.all([a.dispose(), b.dispose()]);
    }));

  it('a key written in the clear is warned of once, and a key password for it: it protects nothing there', () =>
    withTempDir(async (tmp) => {
      const keyDir = join(tmp, 'keys');
      const written: string[] = [];
      const plain = clientFor(server, { keyDir, keyRotationInterval: 0, onWarning: (w) => written.push(w) });
      await (await plain.client.keyPair(), plain.dispose());
      expect(readFileSync(join(keyDir, 'private_key.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(written.filter((w) => !w.startsWith('allowHttp'))).toEqual([
        `${join(keyDir, 'private_key.pem')} was written unencrypted (mode 0600): a keyPassword (or NOMYO_KEY_PASSWORD) would have encrypted it; nomyo keys change-password encrypts it now`,
      ]);
      const reloaded: string[] = [];
      const again = clientFor(server, { keyDir, keyRotationInterval: 0, onWarning: (w) => reloaded.push(w) });
      await (await again.client.keyPair(), again.dispose());
      expect(reloaded.filter((w) => !w.startsWith('allowHttp'))).toEqual([]);
      const warnings: string[] = [];
      const client = clientFor(server, { keyDir, keyPassword: PASSWORD, keyRotationInterval: 0, onWarning: (w) => warnings.push(w) });
      await client.client.keyPair();
      expect(warnings.filter((w) => !w.startsWith('allowHttp'))).toEqual([`${join(keyDir, 'private_key.pem')} is not encrypted: the key password does not protect it (nomyo keys change-password encrypts it)`]);
      await client.dispose();
    }));

  it('a wrong password is a KeyPasswordError: nothing is sent, the file is untouched', () =>
    withTempDir(async (keyDir) => {
      const a = clientFor(server, { keyDir, keyPassword: PASSWORD });
      await a.create(hello);
      const file = join(keyDir, 'private_key.pem');
      const before = { bytes: readFileSync(file), mtime: statSync(file).mtimeMs };
      server.clearRequests();
      const b = clientFor(server, { keyDir, keyPassword: 'a wrong password' });
      await expect(b.create(hello)).rejects.toBeInstanceOf(KeyPasswordError);
      const c = clientFor(server, { keyDir });
      await expect(c.create(hello)).rejects.toBeInstanceOf(KeyPasswordError);
      expect({ bytes: readFileSync(file), mtime: statSync(file).mtimeMs }).toEqual(before);
      expect(server.requests.filter((r) => r.method === 'POST')).toEqual([]);
      expect(() => clientFor(server, { keyDir, keyPassword: 'short' })).toThrow(/at least 8 characters/);
    }));

  it('a rotated pair is saved to keyDir, and the next client starts from it', () =>
    withTempDir(async (keyDir) => {
      server.clearRequests();
      const warnings: string[] = [];
      const a = clientFor(server, { keyDir, keyPassword: PASSWORD, keyRotationInterval: 400, onWarning: (w) => warnings.push(w) });
      const first = await a.client.keyPair();
      await sleep(1500);
      const now = await a.client.keyPair();
      expect(now.fingerprint).not.toBe(first.fingerprint);
      await a.dispose();
      // Read only after dispose: until then the next rotation may be saving. Dispose waits for a save
      // that has begun writing, so the files hold `now`, or the pair that save was writing.
      const saved = readFileSync(join(keyDir, 'public_key.pem'), 'utf8');
      expect(saved).not.toBe(first.publicKeyPem);
      const b = clientFor(server, { keyDir, keyPassword: PASSWORD, keyRotationInterval: 0 });
      expect((await b.client.keyPair()).publicKeyPem).toBe(saved);
      await b.create(hello);
      expect(warnings.filter((w) => !w.startsWith('allowHttp'))).toEqual([]);
    }));

  it('once dispose resolves, keyDir never changes: a rotation saving meanwhile finishes first', () =>
    withTempDir(async (keyDir) => {
      const files = () => ['private_key.pem', 'public_key.pem'].map((f) => readFileSync(join(keyDir, f), 'utf8')).join('');
      // Rotation every 150 ms with PBKDF2 600 000 per save: a save is running most of the time.
      for (const wait of [200, 320, 450, 600]) {
        const a = clientFor(server, { keyDir, keyPassword: PASSWORD, keyRotationInterval: 150 });
        await a.client.keyPair();
        await sleep(wait);
        await a.dispose();
        const after = files();
        await sleep(700);
        expect(files()).toBe(after);
        expect(readdirSync(keyDir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
        // What is on disk is one whole pair: the next client opens it without complaint.
        const b = clientFor(server, { keyDir, keyPassword: PASSWORD, keyRotationInterval: 0 });
        expect((await b.client.keyPair()).publicKeyPem).toBe(readFileSync(join(keyDir, 'public_key.pem'), 'utf8'));
        await b.dispose();
      }
    }));

  it.runIf(process.platform !== 'win32')('a keyDir writable by others is refused before anything is written', () =>
    withTempDir(async (keyDir) => {
      chmodSync(keyDir, 0o775);
      const a = clientFor(server, { keyDir });
      const err = (await a.client.keyPair().catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(KeyFileError);
      expect(err.message).toContain(`chmod 700 ${keyDir}`);
      expect(readdirSync(keyDir)).toEqual([]);
      await a.dispose();
    }));

  it('a dangling private_key.pem link is refused, not replaced by a new key', () =>
    withTempDir(async (keyDir) => {
      symlinkSync(join(keyDir, 'missing.pem'), join(keyDir, 'private_key.pem'));
      const a = clientFor(server, { keyDir });
      await expect(a.client.keyPair()).rejects.toThrow(/symbolic link/);
      expect(readdirSync(keyDir)).toEqual(['private_key.pem']);
      await a.dispose();
    }));

  it('loadKeys and generateKeys({ saveToFile })', () =>
    withTempDir(async (tmp) => {
      server.clearRequests();
      const client = clientFor(server, { keyRotationInterval: 0 });
      const loaded = await client.client.loadKeys(join(KEYFILES_DIR, 'python-cryptography.pem'), join(KEYFILES_DIR, 'public.pem'), 'correct horse battery');
      await client.create(hello);
      expect(publicKeysSent(server)[0]!.replace(/\s/g, '')).toBe(readFileSync(join(KEYFILES_DIR, 'public.pem'), 'utf8').replace(/\s/g, ''));
      await expect(client.client.loadKeys(join(KEYFILES_DIR, 'plain.pem'), join(tmp, 'missing.pem'))).rejects.toBeInstanceOf(KeyFileError);
      const dir = join(tmp, 'generated');
      const made = await client.client.generateKeys({ saveToFile: true, keyDir: dir, password: PASSWORD, keySize: 2048 });
      expect(made.fingerprint).not.toBe(loaded.fingerprint);
      await client.create(hello);
      expect(publicKeysSent(server)[1]).toBe(readFileSync(join(dir, 'public_key.pem'), 'utf8'));
      await expect(client.client.generateKeys({ saveToFile: true, keyDir: dir, password: PASSWORD })).rejects.toThrow(/never overwritten/);
      await client.dispose();
    }));
});

describe('server-key pinning', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('serverKeyFingerprint: the right key works (hex or sha256:base64); another is refused before any POST', async () => {
    const b64 = `sha256:${Buffer.from(server.fingerprint, 'hex').toString('base64')}`;
    for (const pin of [server.fingerprint, b64]) await clientFor(server, { serverKeyFingerprint: pin }).create(hello);
    server.clearRequests();
    const wrong = 'ab'.repeat(32);
    const err = (await clientFor(server, { serverKeyFingerprint: wrong }).create(hello).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toContain(server.fingerprint);
    expect(err.message).toContain(wrong);
    expect(server.requests.map((r) => r.method)).toEqual(['GET']);
    expect(() => clientFor(server, { serverKeyFingerprint: 'sha256:nope' })).toThrow(/serverKeyFingerprint/);
  });

  it('trust on first use: a router that changed its key is refused, naming both keys, until trusted deliberately', () =>
    withTempDir(async (keyDir) => {
      const first = clientFor(server, { keyDir });
      await first.create(hello);
      const stored = JSON.parse(readFileSync(join(keyDir, 'known_routers.json'), 'utf8'));
      const before = server.fingerprint;
      expect(stored.routers[server.url].fingerprint).toBe(before);
      const { fingerprint: after } = await server.rotateKey();
      server.clearRequests();
      const second = clientFor(server, { keyDir });
      const err = (await second.create(hello).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(SecurityError);
      expect(err.message).toContain(before);
      expect(err.message).toContain(after);
      expect(err.message).toMatch(/nomyo keys trust --url/);
      expect(server.requests.map((r) => r.method)).toEqual(['GET']);
      // The long-lived client: its POST gets 400, the refreshed key is checked and refused too.
      server.clearRequests();
      await expect(first.create(hello)).rejects.toBeInstanceOf(SecurityError);
      expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      // Accepting deliberately: an explicit pin wins over the stored one.
      await clientFor(server, { keyDir, serverKeyFingerprint: after }).create(hello);
      await Promise.all([first.dispose(), second.dispose()]);
    }));

  it.runIf(process.platform === 'linux')('a key directory this process cannot write: a pinned v2 router is used, with a warning; trust on first use is refused, saying how to trust it', () =>
    withTempDir(async (dir) => {
      chmodSync(dir, 0o500);
      // Not spawnSync: the router runs in this process.
      const run = async (pin?: string) => {
        const { stdout } = await execFileAsync(...withoutDacOverride([process.execPath, READ_ONLY_CLIENT, server.url, dir, pin ?? '']));
        return JSON.parse(stdout) as { content?: string; protocol?: number; error?: { name: string; message: string }; warnings: string[] };
      };
      const pinned = await run(server.fingerprint);
      expect(pinned).toMatchObject({ content: 'echo: hello', protocol: 2 });
      expect(pinned.warnings.filter((w) => w.includes('known_routers'))).toEqual([expect.stringMatching(/known_routers\.json cannot be written \(EACCES\): that .* speaks protocol 2 is remembered in this process only/)]);
      const unpinned = await run();
      expect(unpinned.error?.name).toBe('KeyFileError');
      expect(unpinned.error?.message).toMatch(/cannot trust the router .* on first use: .*known_routers\.json cannot be written \(EACCES\).*nothing was sent.*nomyo keys trust --url/);
      expect(readdirSync(dir)).toEqual([]);
    }));

  it('a key rotation for a keyDir client pinned to both keys meanwhile (docs/deployment.md): no request refused; then trust the new key and drop the pin', () =>
    withTempDir(async (keyDir) => {
      await clientFor(server, { keyDir }).create(hello); // trusts the router's key on first use
      const before = server.fingerprint;
      const { fingerprint: after } = await server.rotateKey(); // the router now serves the new key
      const both = clientFor(server, { keyDir, serverKeyFingerprint: [before, after] });
      await both.create(hello);
      // The pin bypassed the trust store, which still holds the old key: the pin goes once the new key is trusted.
      const unpinned = clientFor(server, { keyDir });
      await expect(unpinned.create(hello)).rejects.toBeInstanceOf(SecurityError);
      await Promise.all([both.dispose(), unpinned.dispose()]);
    }));
});
