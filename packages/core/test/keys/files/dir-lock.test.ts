/**
 * The key directory's lock, in one process (tests/keys/shared-key-dir.test.ts has processes and
 * threads): who holds it, when a holder is gone, breaking one lock at a time, the refresh, the wait.
 * `lockFile` is used directly where the test needs contenders the thread's own queue would line up.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../../../src/keys/client-keys.js';
import { DisposedError, KeyFileError } from '../../../src/errors.js';
import { BREAK_FILE, LOCK_FILE, LOCK_TIMING, lockFile, withKeyDirLock } from '../../../src/keys/files/dir-lock.js';
import { thisProcess } from '../../../src/keys/files/lock-holder.js';
import { openKeyDir } from '../../../src/keys/files/key-dir.js';
import { fileDigest, KeyFileChangedError, saveKeyFiles } from '../../../src/keys/files/key-files.js';
import { KnownRouters } from '../../../src/keys/files/known-routers.js';
import { ClientKeySource } from '../../../src/keys/key-source.js';
import { withTempDir } from '../../helpers/keyfiles.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The pid of a process that has exited (and, right after, is not running). */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
/** When process `pid` started (Linux: /proc/<pid>/stat, field 22). */
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
};
/** A lock file's text, naming this process with `changes`. */
const lockOf = (changes: object) => JSON.stringify({ ...thisProcess(), thread: 0, token: 'not-ours', ...changes });
const age = (path: string, ms: number) => utimesSync(path, new Date(Date.now() - ms), new Date(Date.now() - ms));
const FP = 'a'.repeat(64);
const defaults = { ...LOCK_TIMING };
afterEach(() => Object.assign(LOCK_TIMING, defaults));
const linux = process.platform === 'linux';

describe('key directory lock', () => {
  it('holders of one thread take turns, and the lock file is gone after', () =>
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

  it.skipIf(!linux)('waits while a live process of this machine holds it, however old its lock, and goes on once it is released', () =>
    withTempDir(async (dir) => {
      // vitest's own process: alive, not this one, and started when its /proc says.
      const lock = join(dir, LOCK_FILE);
      writeFileSync(lock, lockOf({ pid: process.ppid, start: startOf(process.ppid) }));
      age(lock, 60_000);
      let released = false;
      void sleep(400).then(() => ((released = true), rmSync(lock)));
      await withKeyDirLock(dir, async () => expect(released).toBe(true));
    }));

  it.skipIf(!linux)('breaks a lock whose process is gone: no longer running, or its pid now another process\'s (a container restarted)', () =>
    withTempDir(async (dir) => {
      const lock = join(dir, LOCK_FILE);
      for (const text of [lockOf({ pid: deadPid() }), lockOf({ start: 'another time' }), lockOf({ pid: process.ppid, start: 'another time' })]) {
        writeFileSync(lock, text);
        const started = Date.now();
        await withKeyDirLock(dir, async () => expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid));
        // At once: not after staleMs untouched, as a lock that cannot be checked.
        expect(Date.now() - started).toBeLessThan(LOCK_TIMING.staleMs / 4);
        expect(readdirSync(dir)).toEqual([]);
      }
    }));

  it.skipIf(!linux)('breaks a lock whose process has ended but was not reaped (a zombie keeps its pid and start)', () =>
    withTempDir(async (dir) => {
      // The shell becomes `sleep 5`, which never reaps the `sleep 0.1` it started: a zombie.
      const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5']);
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d) => resolve(String(d)))));
      try {
        await expect.poll(() => readFileSync(`/proc/${zombie}/stat`, 'utf8').split(') ')[1]![0]).toBe('Z');
        writeFileSync(join(dir, LOCK_FILE), lockOf({ pid: zombie, start: startOf(zombie) }));
        const started = Date.now();
        await withKeyDirLock(dir, async () => {});
        expect(Date.now() - started).toBeLessThan(LOCK_TIMING.staleMs / 4);
      } finally {
        parent.kill();
      }
    }));

  it.skipIf(!linux)('one breaker at a time: a live breaker\'s file is waited for, however old; a gone breaker\'s is removed', () =>
    withTempDir(async (dir) => {
      Object.assign(LOCK_TIMING, { waitMs: 300 });
      writeFileSync(join(dir, LOCK_FILE), lockOf({ pid: deadPid() }));
      writeFileSync(join(dir, BREAK_FILE), lockOf({ pid: process.ppid, start: startOf(process.ppid) }));
      age(join(dir, BREAK_FILE), 60_000);
      await expect(withKeyDirLock(dir, async () => {})).rejects.toThrow(/is locked by process/);
      writeFileSync(join(dir, BREAK_FILE), lockOf({ pid: deadPid() }));
      await withKeyDirLock(dir, async () => {});
      expect(readdirSync(dir)).toEqual([]);
    }));

  it('a lock path, or a break file, that is not a file (a link, even to nothing) is refused at once, never waited on', () =>
    withTempDir(async (dir) => {
      symlinkSync(join(dir, 'nowhere'), join(dir, LOCK_FILE));
      const started = Date.now();
      await expect(withKeyDirLock(dir, async () => {})).rejects.toThrow(/nomyo\.lock is not a lock file of ours/);
      rmSync(join(dir, LOCK_FILE));
      writeFileSync(join(dir, LOCK_FILE), lockOf({ pid: deadPid() }));
      symlinkSync(join(dir, 'nowhere'), join(dir, BREAK_FILE));
      await expect(withKeyDirLock(dir, async () => {})).rejects.toThrow(/nomyo\.lock\.break is not a lock file of ours/);
      expect(Date.now() - started).toBeLessThan(1_000);
    }));

  it.skipIf(!linux)('a worker thread\'s lock, its process still running, is broken once untouched for staleMs (the thread may have ended holding it)', () =>
    withTempDir(async (dir) => {
      Object.assign(LOCK_TIMING, { staleMs: 2_000, waitMs: 250 }); // far apart, as below
      const lock = join(dir, LOCK_FILE);
      writeFileSync(lock, lockOf({ pid: process.ppid, start: startOf(process.ppid), thread: 3 }));
      await expect(withKeyDirLock(dir, async () => {})).rejects.toThrow(/is locked by process/);
      age(lock, 5_000);
      await withKeyDirLock(dir, async () => {});
      expect(readdirSync(dir)).toEqual([]);
    }));

  it('a wait for the lock gives up as soon as its check throws (a client disposed meanwhile)', () =>
    withTempDir(async (dir) => {
      const held = await lockFile(dir);
      let disposed = false;
      setTimeout(() => (disposed = true), 200);
      const started = Date.now();
      const waiting = withKeyDirLock(dir, async () => 'written', () => {
        if (disposed) throw new DisposedError('disposed');
      });
      await expect(waiting).rejects.toBeInstanceOf(DisposedError);
      expect(Date.now() - started).toBeLessThan(1_500);
      await held.release();
    }));

  it('a lock it cannot check (another container, another host, this process\'s other thread) is waited for until untouched for staleMs, then broken', () =>
    withTempDir(async (dir) => {
      // Waiting 250 ms for a lock that goes stale at 2 s: a busy machine's delays stay far from it.
      Object.assign(LOCK_TIMING, { staleMs: 2_000, waitMs: 250 });
      const lock = join(dir, LOCK_FILE);
      for (const text of [lockOf({ pidns: 'pid:[1]', pid: 1 }), lockOf({ host: 'another-host' }), lockOf({})]) {
        writeFileSync(lock, text);
        await expect(withKeyDirLock(dir, async () => {})).rejects.toThrow(/is locked by process/);
        age(lock, 5_000);
        await withKeyDirLock(dir, async () => {});
        expect(readdirSync(dir)).toEqual([]);
      }
    }));

  it('a holder touches its lock: a long hold is never taken for a dead one', () =>
    withTempDir(async (dir) => {
      // Touched every 50 ms, stale after 600 (room for a busy machine's delays), held for 1.5 s.
      Object.assign(LOCK_TIMING, { refreshMs: 50, staleMs: 600 });
      const first = await lockFile(dir);
      let firstOut = false;
      const second = lockFile(dir).then((held) => ((inOrder = firstOut), held));
      let inOrder = false;
      await sleep(1_500);
      firstOut = true;
      await first.release();
      await (await second).release();
      expect(inOrder).toBe(true);
    }));

  it('one breaker at a time, and never a live lock: contenders whose holders die holding it never overlap', () =>
    withTempDir(async (dir) => {
      const dead = lockOf({ pid: deadPid() });
      let inside = 0;
      let overlaps = 0;
      let deaths = 0;
      const until = Date.now() + 1_500;
      const contender = async (n: number) => {
        for (let i = 0; Date.now() < until; i++) {
          const held = await lockFile(dir);
          if (++inside > 1) overlaps++;
          await sleep(1);
          inside--;
          // Every third hold dies holding the lock: a dead process's lock is left for the others to break.
          if ((i + n) % 3 === 0) (writeFileSync(join(dir, LOCK_FILE), dead), deaths++);
          else await held.release();
        }
      };
      await Promise.all([0, 1, 2, 3].map(contender));
      expect(deaths).toBeGreaterThan(10);
      expect(overlaps).toBe(0);
    }));

  it('gives up after waitMs with the holder named, and what to remove if it is gone', () =>
    withTempDir(async (dir) => {
      Object.assign(LOCK_TIMING, { waitMs: 300 });
      writeFileSync(join(dir, LOCK_FILE), lockOf({ host: 'elsewhere', pid: 4242 }));
      const started = Date.now();
      const err = await withKeyDirLock(dir, async () => {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeyFileError);
      expect((err as Error).message).toMatch(/locked by process 4242 on elsewhere: if no process uses it, remove .*nomyo\.lock/);
      expect(Date.now() - started).toBeLessThan(2_000);
    }));

  it('releasing leaves alone a lock that is no longer its own, and a holder can tell it lost it', () =>
    withTempDir(async (dir) => {
      const lock = join(dir, LOCK_FILE);
      await withKeyDirLock(dir, async (stillHeld) => {
        await stillHeld();
        writeFileSync(lock, lockOf({ pid: process.ppid })); // broken as stale and taken by another meanwhile
        await expect(stillHeld()).rejects.toThrow(/was taken from this process/);
      });
      expect(readFileSync(lock, 'utf8')).toBe(lockOf({ pid: process.ppid }));
    }));

  it.skipIf(process.platform === 'win32' || process.getuid?.() === 0)('a directory this process cannot write is read without the lock', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const pair = await openKeyDir(dir, { bits: 2048 });
      const { chmodSync } = await import('node:fs');
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
      expect([old.fingerprint, next.fingerprint]).toContain(await starting);
      const again = await openKeyDir(dir, { bits: 2048 });
      expect(again.fingerprint).toBe(next.fingerprint);
      expect(readdirSync(dir).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    }));

  it('a start that read the key while a writer the lock did not hold off replaced it (as when it reads unlocked) reads it again', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      await openKeyDir(dir, { bits: 2048 });
      const elsewhere = join(tmp, 'next');
      const next = await openKeyDir(elsewhere, { bits: 2048 });
      writeFileSync(join(dir, 'private_key.pem.tmp-0123456789ab'), 'left behind'); // a repair to make: the start reads under the lock
      let reads = 0;
      const pair = await openKeyDir(dir, {
        bits: 2048,
        onDigest: () => {
          // Right after its first read of the private key, the writer's whole new pair lands.
          if (++reads === 1) for (const name of ['private_key.pem', 'public_key.pem']) copyFileSync(join(elsewhere, name), join(dir, name));
        },
      });
      expect(pair.fingerprint).toBe(next.fingerprint);
      expect(reads).toBe(2);
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

  it('a save that waited for the lock checks again there whether it may still write: a client disposed meanwhile writes nothing', () =>
    withTempDir(async (dir) => {
      await openKeyDir(dir, { bits: 2048 });
      const before = readFileSync(join(dir, 'private_key.pem'));
      const held = await lockFile(dir);
      let disposed = false;
      const saving = saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), {
        beforeWrite: () => {
          if (disposed) throw new DisposedError('disposed');
        },
      });
      await sleep(100);
      disposed = true;
      await held.release();
      await expect(saving).rejects.toBeInstanceOf(DisposedError);
      expect(readFileSync(join(dir, 'private_key.pem')).equals(before)).toBe(true);
    }));

  it('a client that loaded the key, disposed while it waits for the lock, gives up the wait; and its rotation does not write over a key file changed since it read it', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      await openKeyDir(dir, { bits: 2048 });
      // A repair to make: the start needs the lock, which another holds.
      writeFileSync(join(dir, 'private_key.pem.tmp-0123456789ab'), 'left behind');
      const held = await lockFile(dir);
      const waiting = new ClientKeySource({ bits: 2048, multiPrime: false, keyDir: dir, onWarning: () => {} });
      const starting = waiting.initial();
      await sleep(100);
      const disposed = Date.now();
      await waiting.dispose();
      await expect(starting).rejects.toBeInstanceOf(DisposedError);
      expect(Date.now() - disposed).toBeLessThan(1_000);
      await held.release();

      const warnings: string[] = [];
      const source = new ClientKeySource({ bits: 2048, multiPrime: false, keyDir: dir, onWarning: (w) => warnings.push(w) });
      await source.initial(); // loaded, not written: its digest is the file's as read
      await saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { password: 'another password' });
      await (await source.prepare()).activate();
      expect(warnings.join('\n')).toMatch(/changed by another process, another client or nomyo keys/);
      await source.dispose();
    }));

  it('a rotation does not write over a key file changed since its client read it (a change of password): its pairs stay in memory, and it says so', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const warnings: string[] = [];
      const source = new ClientKeySource({ bits: 2048, multiPrime: false, keyDir: dir, password: 'first password', onWarning: (w) => warnings.push(w) });
      const first = await source.initial();
      // `nomyo keys change-password`, as it writes: the same key under another password.
      await saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { password: 'second password' });
      const changed = await fileDigest(join(dir, 'private_key.pem'));
      await expect(saveKeyFiles(dir, await generateClientKeyPair(2048, { extractable: true }), { replacing: 'another digest' })).rejects.toBeInstanceOf(KeyFileChangedError);
      const rotated = await (await source.prepare()).activate();
      expect(rotated.fingerprint).not.toBe(first.fingerprint);
      expect(await fileDigest(join(dir, 'private_key.pem'))).toBe(changed);
      expect(warnings.join('\n')).toMatch(/changed by another process, another client or nomyo keys .*stay in memory from now on/);
      expect(source.saveDir).toBeUndefined();
      await source.dispose();
    }));

  it('what an interrupted write left is removed once the pair is whole; the user\'s own files stay, a .bak among them', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'keys');
      const pair = await openKeyDir(dir, { bits: 2048 });
      const leftovers = ['private_key.pem.nomyo-bak', 'private_key.pem.tmp-0123456789ab', 'private_key.pem.nomyo-bak.tmp-0123456789ab', 'known_routers.json.tmp-ba9876543210'];
      for (const name of leftovers) writeFileSync(join(dir, name), 'left behind');
      const users = ['notes.txt', 'private_key.pem.bak', 'public_key.pem.bak', 'private_key.pem.tmp-mine'];
      for (const name of users) writeFileSync(join(dir, name), 'the user’s');
      expect((await openKeyDir(dir, { bits: 2048 })).fingerprint).toBe(pair.fingerprint);
      expect(readdirSync(dir).sort()).toEqual([...users, 'private_key.pem', 'public_key.pem'].sort());
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
