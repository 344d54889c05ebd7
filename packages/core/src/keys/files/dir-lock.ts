/**
 * One writer at a time in a key directory, across processes and threads (Node only). Without it, a
 * client starting while another process rotated its key "repaired" public_key.pem with the old key
 * beside the new private one, for good; processes creating the first pair at once overwrote one
 * another; and known_routers.json lost what another process had just recorded.
 *
 * The lock is a file created exclusively (`wx`) in the directory, saying which process holds it
 * (lock-holder.ts); its holder touches it every `refreshMs`. A lock is broken only when its holder is
 * known to be gone: a process of this machine (same boot, same pid namespace) that no longer runs,
 * or whose pid now belongs to a process started at another time; else once untouched for `staleMs`
 * (another host's, another container's, a thread that died holding it). A process of this machine
 * that still runs keeps its lock however long it holds it (stopped, in a debugger). Breaking goes one
 * breaker at a time (`nomyo.lock.break`), and removes the lock only if it is still the one judged
 * stale: a live holder's lock is never moved. Holders in one thread queue without polling.
 *
 * A directory this process cannot write is read without the lock (nobody could hold it there but a
 * process that can write: its lock is waited for first), and a write there fails on its own.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, unlink, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KeyFileError } from '../../errors.js';
import { isStale, thisProcess, type Holder } from './lock-holder.js';

export const LOCK_FILE = 'nomyo.lock';
/** Made with `wx` by whoever breaks a stale lock, so that two never break at once. */
export const BREAK_FILE = `${LOCK_FILE}.break`;

/** The lock's timing; @internal tests shorten it. */
export const LOCK_TIMING = {
  /** How often a holder touches its lock, so that a long hold is never taken for a dead one. */
  refreshMs: 1_000,
  /** A lock untouched this long, whose holder cannot be checked, is taken for a dead one's. */
  staleMs: 10_000,
  /** How long to wait for the lock: longer than `staleMs`, so a dead holder's lock is broken in time. */
  waitMs: 30_000,
};

/** The last holder queued for each directory (its absolute path), in this thread. */
const queues = new Map<string, Promise<unknown>>();
const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);
/** What a directory nobody can write to is worked in with: no lock to hold. */
const UNLOCKED: HeldLock = { stillHeld: async () => {}, release: async () => {} };

/** Throws a KeyFileError unless this process still holds the lock: call it right before a write. */
export type LockCheck = () => Promise<void>;

/**
 * Runs `work` holding the lock of `dir` (which must exist); queues behind this thread's other
 * holders. `check` is called while the lock is waited for: throwing gives up the wait (a client
 * disposed meanwhile).
 */
export async function withKeyDirLock<T>(dir: string, work: (stillHeld: LockCheck) => Promise<T>, check?: () => void): Promise<T> {
  // Queued at once, in the order of the calls (a path reached through a link queues apart, and
  // meets the others at the lock file).
  const key = resolve(dir);
  const run = (queues.get(key) ?? Promise.resolve()).then(async () => {
    check?.();
    const lock = await lockFile(dir, check);
    try {
      return await work(lock.stillHeld);
    } finally {
      await lock.release();
    }
  });
  const settled = run.catch(() => undefined);
  queues.set(key, settled);
  void settled.then(() => queues.get(key) === settled && queues.delete(key));
  return run;
}

/** A lock held: its check, and its release. */
export interface HeldLock {
  stillHeld: LockCheck;
  release(): Promise<void>;
}

/**
 * Takes the lock file of `dir`, waiting for it (`check` throwing gives up); @internal
 * (withKeyDirLock queues the holders of a thread in front of it).
 */
export async function lockFile(dir: string, check?: () => void): Promise<HeldLock> {
  const path = join(dir, LOCK_FILE);
  const mine = JSON.stringify({ ...thisProcess(), token: randomBytes(12).toString('hex') });
  const deadline = Date.now() + LOCK_TIMING.waitMs;
  let pause = 5;
  for (;;) {
    const created = await create(path, mine);
    if (created === 'created') break;
    const seen = await readLock(path);
    if (created === 'not writable') {
      // Nobody can hold it here but a process that can write: its write is waited for, not raced.
      if (seen === undefined || isStale(seen.holder, seen.ageMs, LOCK_TIMING.staleMs)) return UNLOCKED;
    } else if (seen !== undefined && isStale(seen.holder, seen.ageMs, LOCK_TIMING.staleMs)) {
      const broken = await breakLock(dir, path, seen.text);
      if (broken === 'not writable') return UNLOCKED;
      if (broken === 'broken') continue; // the way is free: taken at once
    }
    check?.();
    if (Date.now() > deadline) {
      const who = seen?.holder.pid !== undefined ? `process ${seen.holder.pid}${seen.holder.host !== undefined ? ` on ${seen.holder.host}` : ''}` : 'another process';
      throw new KeyFileError(`keyDir ${dir} is locked by ${who}: if no process uses it, remove ${path}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 100);
  }
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, LOCK_TIMING.refreshMs);
  refresh.unref();
  const ours = async () => (await readFile(path, 'utf8').catch(() => undefined)) === mine;
  return {
    async stillHeld() {
      if (!(await ours())) throw new KeyFileError(`the lock of keyDir ${dir} was taken from this process (it stalled past ${LOCK_TIMING.staleMs} ms?): nothing was written`);
    },
    async release() {
      clearInterval(refresh);
      // Only our own: a lock broken as stale and taken by another is theirs.
      if (await ours()) await unlink(path).catch(() => {});
    },
  };
}

/** The lock file made with `text`; 'exists' when there is one, 'not writable' when the directory cannot be written. */
async function create(path: string, text: string): Promise<'created' | 'exists' | 'not writable'> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return 'exists';
    if (NOT_WRITABLE.has(code)) return 'not writable';
    throw new KeyFileError(`cannot lock keyDir ${path}: ${code || 'error'}`, { cause: err });
  }
  try {
    await handle.writeFile(text);
  } catch (err) {
    // A disk full, say: no empty lock is left behind to be waited on.
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw new KeyFileError(`cannot lock keyDir ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  await handle.close();
  return 'created';
}

/** The lock's text, holder and age; undefined when there is none. */
async function readLock(path: string): Promise<{ text: string; holder: Holder; ageMs: number } | undefined> {
  try {
    const st = await lstat(path);
    // Never followed: a link there would have every writer wait on something nobody releases.
    if (!st.isFile()) throw new KeyFileError(`${path} is not a lock file of ours (a link, or a directory): remove it`);
    const text = await readFile(path, 'utf8');
    let holder: Holder = {};
    try {
      holder = (JSON.parse(text) ?? {}) as Holder;
    } catch {
      // Being written (created, not yet filled), or damaged: its age decides.
    }
    return { text, holder, ageMs: Date.now() - st.mtimeMs };
  } catch (err) {
    if (err instanceof KeyFileError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot read the lock ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
}

/**
 * Removes the stale lock at `path` if it still holds `staleText`, as the one breaker of the moment
 * (BREAK_FILE, naming its process, itself removed only once its breaker is known gone, as a lock
 * is). Nothing else removes a lock but its holder, so a lock that still reads `staleText` under the
 * break file is the stale one.
 */
async function breakLock(dir: string, path: string, staleText: string): Promise<'broken' | 'busy' | 'not writable'> {
  const breaker = join(dir, BREAK_FILE);
  const created = await create(breaker, JSON.stringify(thisProcess()));
  if (created === 'not writable') return 'not writable';
  if (created === 'exists') {
    // Another breaks it now; one gone while it did left its file, removed once it is known gone.
    const other = await readLock(breaker);
    if (other && isStale(other.holder, other.ageMs, LOCK_TIMING.staleMs)) await unlink(breaker).catch(() => {});
    return 'busy';
  }
  try {
    if ((await readFile(path, 'utf8').catch(() => undefined)) !== staleText) return 'busy';
    try {
      await unlink(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (NOT_WRITABLE.has(code)) return 'not writable';
      if (code !== 'ENOENT') throw new KeyFileError(`cannot remove the stale lock ${path}: ${code || 'error'}`, { cause: err });
    }
    return 'broken';
  } finally {
    await unlink(breaker).catch(() => {});
  }
}
