/**
 * Key pair files (Node only): `private_key.pem` (PKCS#8, optionally PBES2-encrypted, mode 0600)
 * and `public_key.pem` (SPKI, 0644), read and written atomically.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { derToPemBytes, pemToDer } from '../../crypto/pem.js';
import { spkiFingerprint } from '../../crypto/fingerprint.js';
import { encryptPrivateKeyPem, isEncryptedPem, readPrivateKeyPem } from '../../crypto/pkcs8-pbes2.js';
import { KeyFileError } from '../../errors.js';
import type { SecureMemory } from '../../memory/secure-memory.js';
import { generateClientKeyPair, type ClientKeyPair } from '../client-keys.js';
import { exportPkcs8, keyPairFromPkcs8 } from '../key-material.js';
import { syncDirectory, writeFileAtomic, type WriteHooks } from './atomic-write.js';
import { withKeyDirLock } from './dir-lock.js';
import { checkManagedFile, ensureKeyDirectory } from './safe-paths.js';

export const PRIVATE_KEY_FILE = 'private_key.pem';
export const PUBLIC_KEY_FILE = 'public_key.pem';
/** The library's copy of a key file while it is replaced: a name of its own, never a user's `.bak`. */
export const BACKUP_SUFFIX = '.nomyo-bak';
/** No key file is anywhere near this; a larger one is not read into memory. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface SaveKeyOptions {
  /** Encrypts the private key (PBES2, at least 8 characters); without it the file is plain PKCS#8. */
  password?: string | undefined;
  /** PBKDF2 iterations (default 600 000). */
  iterations?: number | undefined;
  /** Where the password's bytes live while it is used (a client's secure memory; default: the addon's when installed). */
  memory?: SecureMemory | undefined;
  /** Test hooks (failure injection between write and rename). */
  hooks?: WriteHooks | undefined;
  /**
   * Called once the key is encrypted (the slow part), before the first file is touched: throwing
   * abandons the save with every file as it was (a client disposed meanwhile).
   */
  beforeWrite?: (() => void) | undefined;
  /** Refuses (KeyFileError) to write over an existing private key, checked under the directory's lock. */
  exclusive?: boolean | undefined;
  /**
   * Writes only over the private key file with this digest ({@link fileDigest}), the one the caller
   * read or wrote last, checked under the lock; else throws {@link KeyFileChangedError}. A rotation
   * no longer writes over a key another process or client, or `nomyo keys change-password`, wrote meanwhile.
   */
  replacing?: string | undefined;
  /** Told, under the lock, the {@link fileDigest} of the private key file written. */
  onWritten?: ((digest: string) => void) | undefined;
}

/** How {@link loadKeyFiles} opens a key file. */
export interface LoadKeyOptions {
  /** For an encrypted private key file. */
  password?: string | undefined;
  /** Told when a password is given for a key stored in the clear. */
  onWarning?: ((message: string) => void) | undefined;
  /** Told the {@link fileDigest} of the bytes the key was read from (what `replacing` compares). */
  onDigest?: ((digest: string) => void) | undefined;
  /** Where the password's bytes live while it is used (see {@link SaveKeyOptions.memory}). */
  memory?: SecureMemory | undefined;
}

/** The private key file is not the one the caller read or wrote last: another process or client, or `nomyo keys`, changed it. */
export class KeyFileChangedError extends KeyFileError {
  override name = 'KeyFileChangedError';
}

/** The SHA-256 (hex) of a file's bytes, or undefined when there is none: what `replacing` compares. */
export async function fileDigest(path: string): Promise<string | undefined> {
  const bytes = await readKeyFile(path);
  if (!bytes) return undefined;
  try {
    return digestOf(bytes);
  } finally {
    bytes.fill(0);
  }
}

function digestOf(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function keyFilePaths(dir: string): { privateKeyPath: string; publicKeyPath: string } {
  return { privateKeyPath: join(dir, PRIVATE_KEY_FILE), publicKeyPath: join(dir, PUBLIC_KEY_FILE) };
}

/** A file's bytes, or undefined when it does not exist. Other failures are KeyFileErrors. */
export async function readKeyFile(path: string): Promise<Buffer | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  if (bytes.length > MAX_KEY_FILE_BYTES) {
    bytes.fill(0); // it may still hold a key, with more after it
    throw new KeyFileError(`${path} is too large to be a key file`);
  }
  return bytes;
}

/**
 * Loads a key pair: the private key (PKCS#8 PEM, encrypted or not) and, when given, the public key,
 * which must match. Without a public key path the public key is derived from the private one.
 * @throws KeyPasswordError wrong or missing password; KeyFileError anything else (missing, corrupt,
 * not RSA, under 2048 bits, mismatched public key).
 */
export async function loadKeyFiles(privateKeyPath: string, publicKeyPath?: string, options: LoadKeyOptions = {}): Promise<ClientKeyPair> {
  const { password, onWarning, onDigest, memory } = options;
  const bytes = await readKeyFile(privateKeyPath);
  if (!bytes) throw new KeyFileError(`no private key file at ${privateKeyPath}`);
  let pair: ClientKeyPair;
  try {
    onDigest?.(digestOf(bytes));
    // As bytes: a key stored in the clear never becomes a string (which could not be zeroed).
    // A password given for one protects nothing: the caller believes otherwise.
    if (password !== undefined && !isEncryptedPem(bytes)) {
      onWarning?.(`${privateKeyPath} is not encrypted: the key password does not protect it (nomyo keys change-password encrypts it)`);
    }
    const pkcs8 = await readPrivateKeyPem(bytes, password, memory);
    try {
      pair = await keyPairFromPkcs8(pkcs8);
    } finally {
      pkcs8.fill(0);
    }
  } finally {
    bytes.fill(0);
  }
  if (publicKeyPath !== undefined) await checkPublicKeyFile(publicKeyPath, pair);
  return pair;
}

/** Throws KeyFileError unless the file holds exactly `pair`'s public key. */
export async function checkPublicKeyFile(publicKeyPath: string, pair: ClientKeyPair): Promise<void> {
  const text = await readKeyFile(publicKeyPath);
  if (!text) throw new KeyFileError(`no public key file at ${publicKeyPath}`);
  let fingerprint: string;
  try {
    fingerprint = await spkiFingerprint(pemToDer(text, 'PUBLIC KEY'));
  } catch (cause) {
    throw new KeyFileError(`${publicKeyPath} is not a PEM "PUBLIC KEY" (SPKI) file`, { cause });
  }
  if (fingerprint !== pair.fingerprint) {
    throw new KeyFileError(`the public key in ${publicKeyPath} (sha256 ${fingerprint}) does not match the private key (sha256 ${pair.fingerprint})`);
  }
}

/**
 * Writes `pair` into `dir` (created 0700), holding the directory's lock (dir-lock.ts): each file
 * atomically; while they are replaced, the previous files are kept as `*.nomyo-bak`, removed once both
 * new files are whole and synced. The key is encrypted before the lock is taken (the slow part).
 * `pair.privateKey` must be extractable; the pair returned holds it re-imported non-extractable.
 * @throws KeyFileError an existing `dir` owned by another user or writable by others, a key file
 * that is a symbolic link (left as it is), with `exclusive` an existing private key, with
 * `replacing` one changed meanwhile (KeyFileChangedError).
 */
export async function saveKeyFiles(dir: string, pair: ClientKeyPair, options: SaveKeyOptions = {}): Promise<ClientKeyPair> {
  const { privateKeyPath, publicKeyPath } = keyFilePaths(dir);
  await ensureKeyDirectory(dir);
  const pkcs8 = await exportPkcs8(pair.privateKey);
  let pem: string | Uint8Array;
  let usable: ClientKeyPair;
  try {
    // First: a key refused here leaves no PEM of it behind.
    usable = await keyPairFromPkcs8(pkcs8);
    // Unencrypted, the PEM is the key itself: made as bytes (zeroed once written), never a string.
    pem = options.password !== undefined ? await encryptPrivateKeyPem(pkcs8, options.password, { iterations: options.iterations, memory: options.memory }) : derToPemBytes(pkcs8, 'PRIVATE KEY');
  } finally {
    pkcs8.fill(0);
  }
  try {
    const written = pem;
    await withKeyDirLock(
      dir,
      async (stillHeld) => {
        // Under the lock too: a source disposed while it waited for it never writes.
        options.beforeWrite?.();
        if ((await checkManagedFile(privateKeyPath)) && options.exclusive) throw existingKeyError(privateKeyPath);
        if (options.replacing !== undefined && (await fileDigest(privateKeyPath)) !== options.replacing) {
          throw new KeyFileChangedError(`${privateKeyPath} was changed by another process, another client or nomyo keys since this client read it: not written over`);
        }
        await checkManagedFile(publicKeyPath);
        await stillHeld();
        await replacePair(dir, written, pair.publicKeyPem, options.hooks);
        options.onWritten?.(digestOf(written));
      },
      options.beforeWrite,
    );
  } finally {
    if (typeof pem !== 'string') pem.fill(0);
  }
  return usable;
}

/** Why a new pair is not written where a private key already is. */
export function existingKeyError(privateKeyPath: string): KeyFileError {
  return new KeyFileError(`${privateKeyPath} already exists: load it (loadKeys / keyDir), or move it away first; it is never overwritten`);
}

/** A fresh pair written to `dir`; the pair returned has a non-extractable private key. */
export async function generateKeyFiles(dir: string, bits: number, options: SaveKeyOptions = {}): Promise<ClientKeyPair> {
  return saveKeyFiles(dir, await generateClientKeyPair(bits, { extractable: true }), options);
}

/**
 * Replaces both key files, each atomically, the previous ones kept as backups meanwhile. A write that
 * fails (a full disk) puts back what it had replaced, so the pair on disk stays the one before; a
 * crash leaves the backups, from which the next start repairs the pair (key-dir.ts).
 */
async function replacePair(dir: string, privatePem: string | Uint8Array, publicPem: string, hooks: WriteHooks | undefined): Promise<void> {
  const { privateKeyPath, publicKeyPath } = keyFilePaths(dir);
  const backups = [await backUp(privateKeyPath, 0o600), await backUp(publicKeyPath, 0o644)];
  const replaced: string[] = [];
  try {
    await writeFileAtomic(privateKeyPath, privatePem, 0o600, hooks);
    replaced.push(privateKeyPath);
    await writeFileAtomic(publicKeyPath, publicPem, 0o644, hooks);
  } catch (err) {
    // Only the private key can have been replaced: put back, or removed where there was none.
    const restored = !replaced.includes(privateKeyPath) || (await (backups[0] ? rename(backups[0], privateKeyPath) : unlink(privateKeyPath)).then(() => true, () => false));
    // A pair not put back keeps its backups, from which the next start repairs it (key-dir.ts).
    if (restored) for (const backup of backups) if (backup) await unlink(backup).catch(() => {});
    await syncDirectory(dir);
    throw err;
  }
  for (const backup of backups) if (backup) await unlink(backup).catch(() => {});
  await syncDirectory(dir);
}

/** Copies an existing file to `<path>.nomyo-bak` (atomically); returns the backup's path, or undefined when there was nothing. */
async function backUp(path: string, mode: number): Promise<string | undefined> {
  const bytes = await readKeyFile(path);
  if (!bytes) return undefined;
  try {
    await writeFileAtomic(path + BACKUP_SUFFIX, bytes, mode);
  } finally {
    bytes.fill(0);
  }
  return path + BACKUP_SUFFIX;
}
