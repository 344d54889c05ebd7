/**
 * The key directory (`keyDir`, Node only): load the pair it holds, or generate and save one when it
 * holds none. A key that exists but cannot be opened is an error, never replaced by a fresh key:
 * replacing it would silently lose the user's key. Anything to repair or create is done holding
 * the directory's lock (dir-lock.ts), against the files as they are then.
 */
import { KeyFileError, KeyPasswordError } from '../../errors.js';
import type { ClientKeyPair } from '../client-keys.js';
import { writeFileAtomic } from './atomic-write.js';
import { withKeyDirLock, type LockCheck } from './dir-lock.js';
import { BACKUP_SUFFIX, checkPublicKeyFile, existingKeyError, fileDigest, generateKeyFiles, keyFilePaths, loadKeyFiles, readKeyFile, type SaveKeyOptions } from './key-files.js';
import { findLeftovers, removeLeftovers } from './leftovers.js';
import { checkKeyDirectory, checkManagedFile, ensureKeyDirectory, lstatOrUndefined } from './safe-paths.js';

export interface KeyDirOptions extends SaveKeyOptions {
  /** Modulus for a pair generated because the directory holds none. */
  bits: number;
  onWarning?: ((message: string) => void) | undefined;
  /** Told the {@link fileDigest} of the private key file the pair was read from or written to. */
  onDigest?: ((digest: string) => void) | undefined;
}

/**
 * The pair in `dir`: loaded when `private_key.pem` exists, else generated and saved.
 * @throws KeyPasswordError / KeyFileError when an existing key cannot be opened (the files stay as they are);
 * KeyFileError when the directory is another user's or writable by others, or a key file is a symbolic link.
 */
export async function openKeyDir(dir: string, options: KeyDirOptions): Promise<ClientKeyPair> {
  return open(dir, options, READ_ATTEMPTS);
}

/** How often a start reads a key the lock could not keep a writer from replacing meanwhile. */
const READ_ATTEMPTS = 3;

async function open(dir: string, given: KeyDirOptions, attempts: number): Promise<ClientKeyPair> {
  const { privateKeyPath, publicKeyPath } = keyFilePaths(dir);
  // The digest of the private key file as last read, to tell a file replaced meanwhile.
  let read: string | undefined;
  const options: KeyDirOptions = { ...given, onDigest: (digest) => ((read = digest), given.onDigest?.(digest)) };
  // Without the lock first: a start, the common case, never waits on another process's write.
  const dirStat = await checkKeyDirectory(dir);
  // lstat: a link (even one to nothing) is refused, never taken for a missing key and replaced.
  const privateStat = dirStat && (await checkManagedFile(privateKeyPath));
  const publicStat = dirStat && (await checkManagedFile(publicKeyPath));
  if (privateStat && publicStat && (await findLeftovers(dir)).length === 0) {
    const pair = await loadPair(privateKeyPath, options);
    // A mismatch here may be a rotation of another process between its two renames: settled under the lock.
    const matches = await checkPublicKeyFile(publicKeyPath, pair).then(() => true, () => false);
    if (matches) return pair;
  }
  await ensureKeyDirectory(dir);
  let settled: ClientKeyPair | undefined;
  try {
    // A client disposed while it waits for the lock gives up the wait (`beforeWrite` throws).
    settled = await withKeyDirLock(dir, (stillHeld) => settle(dir, options, stillHeld), options.beforeWrite);
  } catch (err) {
    // A writer the lock did not hold off (this process cannot write the directory, so it reads it
    // unlocked) replaced the key while it was read: it is read again, whole this time.
    const replaced = err instanceof KeyFileError && !(err instanceof KeyPasswordError) && read !== undefined && (await fileDigest(privateKeyPath)) !== read;
    if (attempts > 1 && replaced) return open(dir, given, attempts - 1);
    throw err;
  }
  if (settled) return settled;
  // The first pair, made outside the lock (the slow part) and written only where there is still none.
  try {
    const pair = await generateKeyFiles(dir, options.bits, { ...options, exclusive: true, onWritten: options.onDigest });
    if (options.password === undefined) {
      options.onWarning?.(`${privateKeyPath} was written unencrypted (mode 0600): a keyPassword (or NOMYO_KEY_PASSWORD) would have encrypted it; nomyo keys change-password encrypts it now`);
    }
    return pair;
  } catch (err) {
    // Another process made it meanwhile: theirs is the directory's pair.
    if (!(await checkManagedFile(privateKeyPath))) throw err;
  }
  return open(dir, given, attempts);
}

/**
 * Holding the lock: the directory's pair, its public key repaired and what interrupted writes left
 * removed; undefined when it holds none.
 */
async function settle(dir: string, options: KeyDirOptions, stillHeld: LockCheck): Promise<ClientKeyPair | undefined> {
  const { privateKeyPath, publicKeyPath } = keyFilePaths(dir);
  if (!(await checkManagedFile(privateKeyPath))) {
    if (await checkManagedFile(publicKeyPath)) {
      throw new KeyFileError(`${dir} holds ${publicKeyPath} but no private key: restore private_key.pem, or remove public_key.pem to start with a new key`);
    }
    return undefined;
  }
  const pair = await loadPair(privateKeyPath, options);
  await settleKeyDir(dir, pair, stillHeld, options.onWarning);
  return pair;
}

async function loadPair(privateKeyPath: string, options: KeyDirOptions): Promise<ClientKeyPair> {
  const privateStat = await checkManagedFile(privateKeyPath);
  if (privateStat && process.platform !== 'win32' && (privateStat.mode & 0o077) !== 0) {
    options.onWarning?.(`${privateKeyPath} is readable by other users (mode ${(privateStat.mode & 0o777).toString(8)}): run chmod 600 on it`);
  }
  return loadKeyFiles(privateKeyPath, undefined, options);
}

/**
 * Holding the lock, with `pair` the one in private_key.pem: public_key.pem made to match it, then what
 * interrupted writes left removed (the rotated-away key's backup among them).
 */
export async function settleKeyDir(dir: string, pair: ClientKeyPair, stillHeld: LockCheck, onWarning?: (message: string) => void): Promise<void> {
  const { privateKeyPath, publicKeyPath } = keyFilePaths(dir);
  await reconcilePublicKey(publicKeyPath, privateKeyPath, pair, stillHeld, onWarning);
  await removeLeftovers(dir);
}

/**
 * public_key.pem is derived data: rewritten when missing, or when a rotation was interrupted
 * between the two renames (the private key is already the new one and its backup still exists).
 * Any other mismatch is an error: someone put a different key there.
 */
async function reconcilePublicKey(publicKeyPath: string, privateKeyPath: string, pair: ClientKeyPair, stillHeld: LockCheck, onWarning?: (m: string) => void): Promise<void> {
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
  await stillHeld();
  await writeFileAtomic(publicKeyPath, pair.publicKeyPem, 0o644);
}

/** Refuses to write a new pair over an existing one (explicit generation must not destroy a key), or into an unsafe directory. */
export async function assertNoKeyPair(dir: string): Promise<void> {
  const { privateKeyPath } = keyFilePaths(dir);
  if ((await checkKeyDirectory(dir)) && (await checkManagedFile(privateKeyPath))) throw existingKeyError(privateKeyPath);
}
