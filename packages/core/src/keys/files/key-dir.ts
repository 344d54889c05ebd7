/**
 * The key directory (`keyDir`, Node only): load the pair it holds, or generate and save one when it
 * holds none. A key that exists but cannot be opened is an error, never replaced by a fresh key:
 * replacing it would silently lose the user's key.
 */
import { KeyFileError } from '../../errors.js';
import type { ClientKeyPair } from '../client-keys.js';
import { writeFileAtomic } from './atomic-write.js';
import { BACKUP_SUFFIX, checkPublicKeyFile, generateKeyFiles, keyFilePaths, loadKeyFiles, readKeyFile, type SaveKeyOptions } from './key-files.js';
import { checkKeyDirectory, checkManagedFile, lstatOrUndefined } from './safe-paths.js';

export interface KeyDirOptions extends SaveKeyOptions {
  /** Modulus for a pair generated because the directory holds none. */
  bits: number;
  onWarning?: ((message: string) => void) | undefined;
}

/**
 * The pair in `dir`: loaded when `private_key.pem` exists, else generated and saved.
 * @throws KeyPasswordError / KeyFileError when an existing key cannot be opened (the files stay as they are);
 * KeyFileError when the directory is another user's or writable by others, or a key file is a symbolic link.
 */
export async function openKeyDir(dir: string, options: KeyDirOptions): Promise<ClientKeyPair> {
  const { privateKeyPath, publicKeyPath } = keyFilePaths(dir);
  const dirStat = await checkKeyDirectory(dir);
  // lstat: a link (even one to nothing) is refused, never taken for a missing key and replaced.
  const privateStat = dirStat && (await checkManagedFile(privateKeyPath));
  const publicStat = dirStat && (await checkManagedFile(publicKeyPath));
  if (!privateStat) {
    if (publicStat) {
      throw new KeyFileError(`${dir} holds ${publicKeyPath} but no private key: restore private_key.pem, or remove public_key.pem to start with a new key`);
    }
    return generateKeyFiles(dir, options.bits, options);
  }
  if (process.platform !== 'win32' && (privateStat.mode & 0o077) !== 0) {
    options.onWarning?.(`${privateKeyPath} is readable by other users (mode ${(privateStat.mode & 0o777).toString(8)}): run chmod 600 on it`);
  }
  const pair = await loadKeyFiles(privateKeyPath, undefined, options.password, options.onWarning);
  await reconcilePublicKey(publicKeyPath, privateKeyPath, pair, options.onWarning);
  return pair;
}

/**
 * public_key.pem is derived data: rewritten when missing, or when a rotation was interrupted
 * between the two renames (the private key is already the new one and its backup still exists).
 * Any other mismatch is an error: someone put a different key there.
 */
async function reconcilePublicKey(publicKeyPath: string, privateKeyPath: string, pair: ClientKeyPair, onWarning?: (m: string) => void): Promise<void> {
  const existing = await readKeyFile(publicKeyPath);
  if (existing) {
    try {
      await checkPublicKeyFile(publicKeyPath, pair);
      return;
    } catch (err) {
      if (!(await lstatOrUndefined(privateKeyPath + BACKUP_SUFFIX))) throw err;
    }
    onWarning?.(`${publicKeyPath} did not match the private key after an interrupted key rotation: rewritten from the private key`);
  }
  await writeFileAtomic(publicKeyPath, pair.publicKeyPem, 0o644);
}

/** Refuses to write a new pair over an existing one (explicit generation must not destroy a key), or into an unsafe directory. */
export async function assertNoKeyPair(dir: string): Promise<void> {
  const { privateKeyPath } = keyFilePaths(dir);
  if ((await checkKeyDirectory(dir)) && (await checkManagedFile(privateKeyPath))) {
    throw new KeyFileError(`${privateKeyPath} already exists: load it (loadKeys / keyDir), or move it away first; it is never overwritten`);
  }
}
