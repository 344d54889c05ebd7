/**
 * One writer at a time in a key directory, across processes (Node only). Without it, a client
 * starting while another process rotated its key "repaired" public_key.pem with the old key beside
 * the new private one, for good; processes creating the first pair at once overwrote one another;
 * and known_routers.json lost what another process had just recorded.
 *
 * The lock is a file created exclusively (`wx`) in the directory, saying which process holds it;
 * its holder touches it every REFRESH_MS. A lock left by a process that died is broken: at once when
 * that process is gone from this host, else once untouched for STALE_MS (another host's, or a
 * process id reused, as a container's is after a restart). Holders in one process queue, without
 * polling. A directory this process cannot write to is worked in without the lock: nobody can
 * hold it there, and a write there fails on its own.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, realpath, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { KeyFileError } from '../../errors.js';

export const LOCK_FILE = 'nomyo.lock';
/** How often a holder touches its lock, so that a long hold is never taken for a dead one. */
const REFRESH_MS = 1_000;
/** A lock untouched this long belongs to a holder that is gone. */
const STALE_MS = 10_000;
/** How long to wait for the lock: longer than STALE_MS, so a dead holder's lock is broken in time. */
const WAIT_MS = 30_000;
/** Where a lock that was broken is moved, to be read again before it is removed. */
export const BROKEN_LOCK_INFIX = '.broken-';

interface Locks {
  /** The last holder queued for each directory (its real path). */
  queues: Map<string, Promise<unknown>>;
  /** The tokens of the locks held by this process. */
  held: Set<string>;
}
// Shared by every copy of this module in the process (its ESM and CommonJS builds, two versions):
// a lock file naming this process is then known to be held, or left by a process before it.
const LOCKS_KEY = Symbol.for('@nomyo/core key directory locks');
const locks: Locks = ((globalThis as Record<symbol, Locks | undefined>)[LOCKS_KEY] ??= { queues: new Map(), held: new Set() });

/** Runs `work` holding the lock of `dir` (which must exist); queues behind this process's other holders. */
export async function withKeyDirLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const key = await realpath(dir);
  const run = (locks.queues.get(key) ?? Promise.resolve()).then(async () => {
    const release = await acquire(dir, join(key, LOCK_FILE));
    try {
      return await work();
    } finally {
      await release();
    }
  });
  const settled = run.catch(() => undefined);
  locks.queues.set(key, settled);
  void settled.then(() => locks.queues.get(key) === settled && locks.queues.delete(key));
  return run;
}

interface Holder {
  pid?: number;
  host?: string;
  token?: string;
}

async function acquire(dir: string, path: string): Promise<() => Promise<void>> {
  const token = randomBytes(12).toString('hex');
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), token });
  const deadline = Date.now() + WAIT_MS;
  let pause = 5;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(mine);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return async () => {};
      if (code !== 'EEXIST') throw new KeyFileError(`cannot lock keyDir ${dir}: ${code ?? 'error'}`, { cause: err });
    }
    const seen = await readLock(path);
    if (seen === undefined) continue; // released meanwhile
    if (isStale(seen)) {
      await breakLock(path, seen.text);
      continue;
    }
    if (Date.now() > deadline) {
      const who = seen.holder.pid !== undefined ? `process ${seen.holder.pid}${seen.holder.host !== undefined ? ` on ${seen.holder.host}` : ''}` : 'another process';
      throw new KeyFileError(`keyDir ${dir} is locked by ${who}: if no process uses it, remove ${path}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 100);
  }
  locks.held.add(token);
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, REFRESH_MS);
  refresh.unref();
  return async () => {
    clearInterval(refresh);
    locks.held.delete(token);
    // Only our own: had this process stalled past STALE_MS, the lock may have been broken and taken.
    if ((await readFile(path, 'utf8').catch(() => undefined)) === mine) await unlink(path).catch(() => {});
  };
}

/** The lock's text, holder and age; undefined when there is none. */
async function readLock(path: string): Promise<{ text: string; holder: Holder; ageMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let holder: Holder = {};
    try {
      holder = (JSON.parse(text) ?? {}) as Holder;
    } catch {
      // Being written (created, not yet filled), or damaged: its age decides.
    }
    return { text, holder, ageMs: Date.now() - st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot read the lock ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
}

function isStale({ holder, ageMs }: { holder: Holder; ageMs: number }): boolean {
  if (ageMs > STALE_MS) return true;
  if (typeof holder.pid !== 'number' || holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return !locks.held.has(String(holder.token));
  try {
    process.kill(holder.pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: it exists, as another user
  }
}

/**
 * Removes a stale lock: moved aside first, and read again there, so that a lock taken by a live
 * holder since it was judged stale (another process broke it first) is put back, not removed.
 */
async function breakLock(path: string, seenText: string): Promise<void> {
  const aside = `${path}${BROKEN_LOCK_INFIX}${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return; // gone already: released, or broken by another
  }
  const text = await readFile(aside, 'utf8').catch(() => undefined);
  if (text !== seenText) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
}
