/**
 * Who holds a key directory's lock (dir-lock.ts), and whether that holder is known to be gone (Node
 * only). A pid means one process only on one machine, in one pid namespace, for as long as that
 * process runs: a container's processes have pids of their own (often 1), and a pid is reused after
 * its process ends. So a lock names its process by all of them, and by its start time where the
 * system tells it (Linux), which a reused pid does not share.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';

/** What a lock file says of its holder (each field may be missing from a lock being written, or damaged). */
export interface Holder {
  pid?: number | undefined;
  host?: string | undefined;
  /** Linux: the boot's id (`/proc/sys/kernel/random/boot_id`). */
  boot?: string | undefined;
  /** Linux: the pid namespace (`/proc/self/ns/pid`): a pid means the same process only within one. */
  pidns?: string | undefined;
  /** Linux: when the process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22). */
  start?: string | undefined;
  /** The worker thread holding it (`threadId`); 0 or missing: the process's main thread. */
  thread?: number | undefined;
  /** The lock's own: what its holder checks it still holds. */
  token?: string | undefined;
}

function readProc(path: string, link = false): string | undefined {
  try {
    return (link ? readlinkSync(path) : readFileSync(path, 'utf8')).trim();
  } catch {
    return undefined; // not Linux, or no such process
  }
}

/**
 * What /proc says of process `pid` (Linux): when it started, and whether it has ended (a zombie, its
 * parent not yet told, still has its pid and start). Undefined elsewhere, or with no such process.
 */
function procStat(pid: number | 'self'): { start: string | undefined; ended: boolean } | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The fields after the command, which may hold spaces and parentheses: the state is the first of
  // them, the 22nd field (the start) the 20th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { start: fields[19], ended: fields[0] === 'Z' || fields[0] === 'X' };
}

/**
 * This process's start, where /proc is this pid namespace's own: `unshare --pid` without a /proc of
 * its own shows the parent namespace's processes under the pids of this one.
 */
function ownStart(): string | undefined {
  const stat = readProc('/proc/self/stat');
  if (stat === undefined || Number(stat.slice(0, stat.indexOf(' '))) !== process.pid) return undefined;
  return procStat('self')?.start;
}

/** The host's name; undefined where asking needs a permission not given (Deno without --allow-sys). */
function hostName(): string | undefined {
  try {
    return hostname();
  } catch {
    return undefined;
  }
}

let self: Holder | undefined;

/** This process, as its locks name it (read once: a few small files of /proc on Linux). */
export function thisProcess(): Holder {
  self ??= { pid: process.pid, host: hostName(), boot: readProc('/proc/sys/kernel/random/boot_id'), pidns: readProc('/proc/self/ns/pid', true), start: ownStart(), thread: threadId };
  return self;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: it exists, as another user
  }
}

/**
 * Whether the holder of a lock untouched for `ageMs` is gone. A process of this machine is gone when
 * it no longer runs, or its pid belongs to a process started at another time; one that runs keeps
 * its lock however long (stopped, say) when its main thread holds it. A worker thread's lock, this
 * process's own (another thread's, another copy of the library's), another machine's or container's,
 * or one whose start is not known, is taken for gone once untouched for `staleMs`: a live holder
 * touches it every second.
 */
export function isStale(holder: Holder, ageMs: number, staleMs: number): boolean {
  const me = thisProcess();
  const pid = holder.pid;
  // Same machine: all that names one said the same, and something named it (Deno without its
  // permissions knows neither the host nor /proc).
  const named = me.host !== undefined || me.boot !== undefined;
  const sameMachine = named && typeof pid === 'number' && holder.host === me.host && holder.boot === me.boot && holder.pidns === me.pidns;
  if (!sameMachine) return ageMs > staleMs;
  if (pid === me.pid && holder.start === me.start) return ageMs > staleMs;
  if (!alive(pid)) return true;
  // Without a start of its own (no /proc of this namespace), a pid says too little.
  const now = holder.start === undefined || me.start === undefined ? undefined : procStat(pid);
  if (now?.start === undefined) return ageMs > staleMs;
  if (now.ended || now.start !== holder.start) return true;
  // Its process runs; a worker thread of it may have ended holding the lock, which it then no longer touches.
  return holder.thread ? ageMs > staleMs : false;
}
