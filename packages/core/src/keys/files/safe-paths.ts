/**
 * Checks on the key directory and the files the library writes in it (Node only). Whoever can write
 * in the key directory can swap the client's key or edit known_routers.json (and so get any router
 * key trusted); a symbolic link in place of a key file would have the library read, or replace,
 * something else. So the directory must belong to this user and be writable by no one else, and the
 * files in it must be regular files, never links.
 */
import { chmod, lstat, mkdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { KeyFileError } from '../../errors.js';

/** lstat, or undefined when nothing is there; other failures are KeyFileErrors. */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot access ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
}

/**
 * The key directory's stats, or undefined when it does not exist yet (it is then created 0700).
 * A symbolic link to a directory is allowed; the directory it leads to is what is checked.
 * @throws KeyFileError not a directory, a link to nothing, or (POSIX) owned by another user or
 * writable by group or others.
 */
export async function checkKeyDirectory(dir: string): Promise<Stats | undefined> {
  let st = await lstatOrUndefined(dir);
  if (!st) return undefined;
  if (st.isSymbolicLink()) {
    try {
      st = await stat(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new KeyFileError(`keyDir ${dir} is a symbolic link to ${code === 'ENOENT' ? 'nothing' : `something that cannot be read (${code})`}: point it at a directory or remove it`, { cause: err });
    }
  }
  if (!st.isDirectory()) throw new KeyFileError(`keyDir ${dir} is not a directory`);
  if (process.platform === 'win32') return st;
  const uid = ownUid(dir);
  if (uid !== undefined && st.uid !== uid) {
    throw new KeyFileError(`keyDir ${dir} belongs to another user (uid ${st.uid}, this process runs as uid ${uid}): use a directory of your own, or chown it and run chmod 700 ${dir}`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new KeyFileError(`keyDir ${dir} is writable by other users (mode ${(st.mode & 0o777).toString(8)}), who could replace its keys or trusted routers: run chmod 700 ${dir}`);
  }
  return st;
}

/** This process's user id, to compare the key directory's owner with; Deno asks for `--allow-sys=uid` to tell it. */
function ownUid(dir: string): number | undefined {
  try {
    return process.getuid?.();
  } catch (cause) {
    throw new KeyFileError(`keyDir ${dir}: this process may not read its own user id, to check that the directory is its own (Deno: --allow-sys=uid)`, { cause });
  }
}

/**
 * A file the library manages in the key directory: its stats, or undefined when there is none.
 * A symbolic link (even one leading nowhere) is refused and left as it is, never replaced.
 * @throws KeyFileError a symbolic link, or not a regular file.
 */
export async function checkManagedFile(path: string): Promise<Stats | undefined> {
  const st = await lstatOrUndefined(path);
  if (!st) return undefined;
  if (st.isSymbolicLink()) {
    throw new KeyFileError(`${path} is a symbolic link: key files in keyDir must be regular files (replace the link with the file it points to, or remove it)`);
  }
  if (!st.isFile()) throw new KeyFileError(`${path} is not a regular file`);
  return st;
}

/** Creates the key directory (0700) when it does not exist yet; either way, checks it as checkKeyDirectory does. */
export async function ensureKeyDirectory(dir: string): Promise<void> {
  if (await checkKeyDirectory(dir)) return;
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is reduced by the umask; set it exactly on what was made.
  if (created !== undefined) await chmod(dir, 0o700);
  await checkKeyDirectory(dir);
}
