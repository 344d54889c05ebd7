import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../../../src/keys/client-keys.js';
import { KeyFileError } from '../../../src/errors.js';
import { LOCK_FILE, withKeyDirLock } from '../../../src/keys/files/dir-lock.js';
import { openKeyDir } from '../../../src/keys/files/key-dir.js';
import { saveKeyFiles } from '../../../src/keys/files/key-files.js';
import { KnownRouters } from '../../../src/keys/files/known-routers.js';
import { withTempDir } from '../../helpers/keyfiles.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The pid of a process that has exited (and, right after, is not running). */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const lockOf = (pid: number, host = hostname()) => JSON.stringify({ pid, host, token: 'not-ours' });
const FP = 'a'.repeat(64);

describe('key directory lock', () => {
  it('holders of one process take turns, and the lock file is gone after', () =>
    withTempDir(async (dir) => {
      const order: string[] = [];
      const hold = (name: string) =>
        withKeyDirLock(dir, async () => {
          order.push(`${name} in`);
          expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
          await sleep(30);
          order.push(`${name} out`);
        });
      await Promise.all([hold('a'), hold('b'), hold('c')]);
      expect(order).toEqual(['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
      expect(readdirSync(dir)).toEqual([]);
    }));

  it('waits while a live process holds it, and goes on once it is released', () =>
    withTempDir(async (dir) => {
      // The parent of this process (vitest's) is alive and not this process: a live holder elsewhere.
      writeFileSync(join(dir, LOCK_FILE), lockOf(process.ppid));
      const started = Date.now();
      const release = sleep(400).then(() => rmSync(join(dir, LOCK_FILE)));
      await withKeyDirLock(dir, async () => {});
      await release;
      expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    }));

  it('breaks a lock left by a process that is gone, by this process before a restart, or untouched for long', () =>
    withTempDir(async (dir) => {
      const lock = join(dir, LOCK_FILE);
      const stale = [
        lockOf(deadPid()),
        // A container's process restarted with the same pid: not a lock this process holds.
        lockOf(process.pid),
        // Another host's, or a process id reused: untouched for a minute.
        lockOf(process.ppid, 'another-host'),
      ];
      for (const [i, text] of stale.entries()) {
        writeFileSync(lock, text);
        if (i === 2) utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
        const started = Date.now();
        await withKeyDirLock(dir, async () => {
          expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
        });
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(readdirSync(dir)).toEqual([]);
      }
    }));

  it('releasing leaves alone a lock that is no longer its own', () =>
    withTempDir(async (dir) => {
      const lock = join(dir, LOCK_FILE);
      await withKeyDirLock(dir, async () => {
        writeFileSync(lock, lockOf(process.ppid)); // broken as stale and taken by another meanwhile
      });
      expect(readFileSync(lock, 'utf8')).toBe(lockOf(process.ppid));
    }));

  it.skipIf(process.platform === 'win32' || process.getuid?.() === 0)('a directory this process cannot write is read without the lock', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const pair = await openKeyDir(dir, { bits: 2048 });
      chmodSync(dir, 0o500);
      try {
        expect((await openKeyDir(dir, { bits: 2048 })).fingerprint).toBe(pair.fingerprint);
        expect(await withKeyDirLock(dir, async () => 'ran')).toBe('ran');
      } finally {
        chmodSync(dir, 0o700);
      }
    }));
});

describe('key directory writers', () => {
  it('a client starting while another rotates waits for the whole pair: never the old public key beside the new private one', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const old = await openKeyDir(dir, { bits: 2048 });
      const next = await generateClientKeyPair(2048, { extractable: true });
      let starting: Promise<string> | undefined;
      await saveKeyFiles(dir, next, {
        hooks: {
          beforeRename: async (target) => {
            if (!target.endsWith('private_key.pem')) return;
            // Starts between the backups and the renames, and reads the old private key before they happen.
            starting = openKeyDir(dir, { bits: 2048 }).then((pair) => pair.fingerprint);
            await sleep(50);
          },
        },
      });
      expect(await starting).toBe(next.fingerprint);
      const again = await openKeyDir(dir, { bits: 2048 });
      expect(again.fingerprint).toBe(next.fingerprint);
      expect(again.fingerprint).not.toBe(old.fingerprint);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('clients creating the first pair at once all get the one that was saved', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const pairs = await Promise.all(Array.from({ length: 4 }, () => openKeyDir(dir, { bits: 2048 })));
      const saved = await openKeyDir(dir, { bits: 2048 });
      expect(new Set(pairs.map((p) => p.fingerprint))).toEqual(new Set([saved.fingerprint]));
    }));

  it('a save with exclusive never writes over a key saved meanwhile', () =>
    withTempDir(async (dir) => {
      const [a, b] = await Promise.all([generateClientKeyPair(2048, { extractable: true }), generateClientKeyPair(2048, { extractable: true })]);
      const results = await Promise.allSettled([saveKeyFiles(dir, a, { exclusive: true }), saveKeyFiles(dir, b, { exclusive: true })]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(failed.reason).toBeInstanceOf(KeyFileError);
      expect(String(failed.reason.message)).toMatch(/already exists/);
      const kept = results.findIndex((r) => r.status === 'fulfilled') === 0 ? a : b;
      expect((await openKeyDir(dir, { bits: 2048 })).fingerprint).toBe(kept.fingerprint);
    }));

  it('what an interrupted write left is removed once the pair is whole; other files stay', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const pair = await openKeyDir(dir, { bits: 2048 });
      const leftovers = ['private_key.pem.tmp-0123456789ab', 'private_key.pem.bak.tmp-0123456789ab', 'known_routers.json.tmp-ba9876543210', `${LOCK_FILE}.broken-0123456789ab`];
      for (const name of leftovers) writeFileSync(join(dir, name), 'left behind');
      writeFileSync(join(dir, 'notes.txt'), 'the user’s');
      writeFileSync(join(dir, 'private_key.pem.tmp-mine'), 'not a name of ours');
      expect((await openKeyDir(dir, { bits: 2048 })).fingerprint).toBe(pair.fingerprint);
      expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'private_key.pem', 'private_key.pem.tmp-mine', 'public_key.pem']);
    }));

  it('known_routers.json changes of clients sharing the directory all stay', () =>
    withTempDir(async (dir) => {
      const origins = Array.from({ length: 8 }, (_, i) => `https://router-${i}.example`);
      await Promise.all(origins.map((origin) => new KnownRouters(dir).trustFirst(origin, FP)));
      const known = new KnownRouters(dir);
      for (const origin of origins) expect(await known.get(origin)).toBe(FP);
      expect(readdirSync(dir)).toEqual(['known_routers.json']);
    }));
});
