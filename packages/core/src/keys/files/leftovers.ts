/**
 * What an interrupted write leaves in a key directory (Node only): the `*.nomyo-bak` copies of a
 * rotation cut off between its renames (the rotated-away private key among them, under its old
 * password), and temporary files of a write killed before its rename (a private key's may be in the
 * clear). Removed under the directory's lock, once its key pair is whole again. Only names the
 * library makes: a user's own `private_key.pem.bak` stays.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_INFIX } from './atomic-write.js';
import { BACKUP_SUFFIX, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE } from './key-files.js';
import { KNOWN_ROUTERS_FILE } from './known-routers.js';

const MANAGED = [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, KNOWN_ROUTERS_FILE];
const BACKUPS = [PRIVATE_KEY_FILE + BACKUP_SUFFIX, PUBLIC_KEY_FILE + BACKUP_SUFFIX];
const TEMP_NAME = /^[0-9a-f]{12}$/;

function isLeftover(name: string): boolean {
  if (BACKUPS.includes(name)) return true;
  return [...MANAGED, ...BACKUPS].some((file) => name.startsWith(file + TEMP_INFIX) && TEMP_NAME.test(name.slice(file.length + TEMP_INFIX.length)));
}

/** The names of what interrupted writes left in `dir`. */
export async function findLeftovers(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter(isLeftover);
}

/** Removes them; call holding the directory's lock, with its key pair whole. */
export async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await findLeftovers(dir)) await unlink(join(dir, name)).catch(() => {});
}
