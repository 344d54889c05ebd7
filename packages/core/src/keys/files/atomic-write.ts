/**
 * Atomic file replacement (Node only): write a temporary file in the same directory with its final
 * mode set at open, fsync it, rename it over the target, fsync the directory. A crash at any point
 * leaves either the old file or the new one, whole; never half a key.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A temporary file is named `<target><TEMP_INFIX><12 hex digits>`. */
export const TEMP_INFIX = '.tmp-';

/** Test hooks: inject a failure (a "crash") at a precise step. */
export interface WriteHooks {
  /** Called after the temporary file is written and synced, before the rename. */
  beforeRename?: (target: string) => void | Promise<void>;
}

/** Replaces `path` with `data` atomically; the file gets `mode` (e.g. 0o600) from its creation. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number, hooks: WriteHooks = {}): Promise<void> {
  const tmp = `${path}${TEMP_INFIX}${randomBytes(6).toString('hex')}`;
  // 'wx': never follow or reuse something already at the temporary name.
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      // The mode given to open() is reduced by the umask; set it exactly.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await hooks.beforeRename?.(path);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDirectory(dirname(path));
}

/** Makes a rename durable. Some platforms (Windows) cannot open a directory: nothing more to do there. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // EISDIR/EPERM on Windows, EINVAL on some file systems: the rename itself has happened.
  } finally {
    await handle?.close();
  }
}
