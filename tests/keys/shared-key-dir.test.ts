/**
 * One key directory shared by processes (workers of one service, a CLI beside a running client):
 * each process here is a real Node.js process using the built package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SecureCompletionClient } from '@nomyo/core';
import { CLI, sleep, withTempDir } from './support.js';

const TESTS_DIR = fileURLToPath(new URL('..', import.meta.url));
const DIST = (file: string) => pathToFileURL(fileURLToPath(new URL(`../node_modules/@nomyo/core/dist/${file}`, import.meta.url))).href;
const DIR_LOCK = DIST('keys/files/dir-lock.js');
const PASSWORD = 'correct horse battery staple';
const fingerprint = (key: Parameters<typeof createPublicKey>[0]) => createHash('sha256').update(createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('hex');

/** A Node.js process running `script` (an ES module, from the tests' directory: `@nomyo/core` resolves). */
function node(script: string, args: string[] = [], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { cwd: TESTS_DIR, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

function output(child: ChildProcess): Promise<{ status: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

/** Resolves once the child has written `line` to its standard output. */
function said(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d) => {
      text += d;
      if (text.includes(line)) resolve();
    });
    child.on('close', () => reject(new Error(`exited without saying ${line}`)));
  });
}

const START_CLIENT = `
import { SecureCompletionClient } from '@nomyo/core';
const [dir] = process.argv.slice(1);
const client = new SecureCompletionClient({ routerUrl: 'https://127.0.0.1:1', keyDir: dir, keySize: 2048, keyPassword: process.env.PASSWORD });
try { console.log('OK', (await client.keyPair()).fingerprint); } catch (e) { console.log('ERR', e.name, e.message); }
await client.dispose();`;

/** Holds the directory's lock until told on its standard input; then writes `private_key.pem` when given one. */
const HOLD_LOCK = `
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
const { withKeyDirLock } = await import(process.env.DIR_LOCK);
const [dir] = process.argv.slice(1);
await withKeyDirLock(dir, async () => {
  console.log('held');
  const told = await new Promise((resolve) => process.stdin.once('data', (d) => resolve(String(d))));
  if (told.startsWith('-----')) writeFileSync(join(dir, 'private_key.pem'), told, { mode: 0o600 });
});
console.log('released');`;

describe('a key directory shared by processes', () => {
  it('processes starting at once on an empty directory all use the one pair saved, and its two files match', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const runs = await Promise.all(Array.from({ length: 6 }, () => output(node(START_CLIENT, [dir], { PASSWORD }))));
      const saved = fingerprint(createPrivateKey({ key: readFileSync(join(dir, 'private_key.pem')), passphrase: PASSWORD }));
      expect(fingerprint(readFileSync(join(dir, 'public_key.pem')))).toBe(saved);
      expect(runs.map((r) => r.stdout.trim())).toEqual(runs.map(() => `OK ${saved}`));
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('a writer waits while another process holds the lock, and writes once it is released', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(dir, { mode: 0o700 });
      const holder = node(HOLD_LOCK, [dir], { DIR_LOCK });
      const held = output(holder);
      await said(holder, 'held');
      const client = new SecureCompletionClient({ routerUrl: 'https://127.0.0.1:1', keySize: 2048 });
      const saving = client.generateKeys({ saveToFile: true, keyDir: dir, keySize: 2048 });
      await sleep(1_500);
      expect(existsSync(join(dir, 'private_key.pem'))).toBe(false);
      holder.stdin!.end('release');
      await held;
      const pair = await saving;
      expect(fingerprint(readFileSync(join(dir, 'public_key.pem')))).toBe(pair.fingerprint);
      await client.dispose();
    }));

  it('threads of one process sharing the directory: each holds the lock in turn, and no router any of them trusted is lost', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      // Each thread has its own copy of the library (its own globals): only the lock file is shared.
      const script = `
        const { workerData, parentPort } = require('node:worker_threads');
        import(workerData.module).then(async ({ KnownRouters }) => {
          const known = new KnownRouters(workerData.dir);
          for (let i = 0; i < 25; i++) await known.trustFirst('https://router-' + workerData.n + '-' + i + '.example', 'b'.repeat(64));
          parentPort.postMessage('done');
        });`;
      const threads = [0, 1, 2, 3].map((n) => new Worker(script, { eval: true, workerData: { module: DIST('keys/files/known-routers.js'), dir, n } }));
      await Promise.all(threads.map((t) => new Promise((resolve, reject) => (t.once('message', resolve), t.once('error', reject)))));
      await Promise.all(threads.map((t) => t.terminate()));
      const known = JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8')) as { routers: Record<string, unknown> };
      expect(Object.keys(known.routers)).toHaveLength(100);
    }));

  it('a lock left by a process killed while it held it does not stop the next one', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const first = new SecureCompletionClient({ routerUrl: 'https://127.0.0.1:1', keyDir: dir, keySize: 2048 });
      const pair = await first.keyPair();
      await first.dispose();
      const holder = node(HOLD_LOCK, [dir], { DIR_LOCK });
      const done = output(holder);
      await said(holder, 'held');
      holder.kill('SIGKILL');
      await done;
      expect(readdirSync(dir)).toContain('nomyo.lock');
      // A start that needs the lock: leftovers of an interrupted write to remove.
      writeFileSync(join(dir, 'private_key.pem.tmp-0123456789ab'), 'left behind');
      const started = Date.now();
      const run = await output(node(START_CLIENT, [dir]));
      expect(run.stdout.trim()).toBe(`OK ${pair.fingerprint}`);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('nomyo keys change-password does not write over a key another process replaced while it asked for the passwords', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const first = new SecureCompletionClient({ routerUrl: 'https://127.0.0.1:1', keyDir: dir, keySize: 2048, keyPassword: PASSWORD });
      await first.keyPair();
      await first.dispose();
      const holder = node(HOLD_LOCK, [dir], { DIR_LOCK });
      const held = output(holder);
      await said(holder, 'held');
      const changing = output(spawn(process.execPath, [CLI, 'keys', 'change-password', '--dir', dir, '--password-env', 'OLD', '--new-password-env', 'NEW'], { env: { PATH: process.env.PATH ?? '', OLD: PASSWORD, NEW: 'another long password' } }));
      // The CLI has read and decrypted the key by now, and waits for the lock.
      await sleep(4_000);
      const replacement = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      holder.stdin!.end(replacement);
      await held;
      const changed = await changing;
      expect(changed.status).toBe(1);
      expect(changed.stderr).toMatch(/changed while the passwords were asked for/);
      expect(readFileSync(join(dir, 'private_key.pem'), 'utf8')).toBe(replacement);
    }));
});
