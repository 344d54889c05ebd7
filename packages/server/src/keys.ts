/**
 * The router's RSA key pair: loaded from a PKCS#8 PEM file, or generated with Web Crypto (and
 * then written 0600 when a file is named). The private key stays non-extractable in memory.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { derToPem, derToPemBytes, generateRsaKeyPair, importRsaPrivateKey, importRsaPublicKey, pemToDer, spkiFingerprint } from '@nomyo/core/protocol';
import { inspectPkcs8 } from '@nomyo/core/internal';

export interface ServerKeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKeyPem: string;
  /** Lowercase hex SHA-256 of the SPKI DER. */
  readonly fingerprint: string;
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

async function describe(privateKey: CryptoKey, publicKey: CryptoKey): Promise<ServerKeyPair> {
  const spki = new Uint8Array(await subtle().exportKey('spki', publicKey));
  return Object.freeze({ privateKey, publicKeyPem: derToPem(spki, 'PUBLIC KEY'), fingerprint: await spkiFingerprint(spki) });
}

/** Re-imports an extractable private key as a non-extractable one, so it cannot leak later. */
async function lockDown(extractable: CryptoKey): Promise<CryptoKey> {
  const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', extractable));
  try {
    return await importRsaPrivateKey(pkcs8, false);
  } finally {
    pkcs8.fill(0);
  }
}

/** A fresh key pair in memory. */
export async function generateKeyPair(bits: number): Promise<ServerKeyPair> {
  const pair = await generateRsaKeyPair(bits, false);
  return describe(pair.privateKey, pair.publicKey);
}

/**
 * The key in a PKCS#8 PEM file. Read as bytes and decoded from them, its public key taken from its
 * own fields (not a JWK export): the key, stored unencrypted, never becomes a JavaScript string,
 * which could not be zeroed.
 */
export async function loadKeyFile(path: string): Promise<ServerKeyPair> {
  const pem = await readFile(path);
  let der: ReturnType<typeof pemToDer> | undefined;
  try {
    if (pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) throw new Error(`${path}: encrypted key files are not supported; decrypt it with: openssl pkcs8 -in ${path} -out plain.pem`);
    if (pem.includes('-----BEGIN RSA PRIVATE KEY-----')) {
      // openssl asks for an encrypted one's password, and writes the key unencrypted.
      const encrypted = pem.includes('Proc-Type: 4,ENCRYPTED') ? ', encrypted' : '';
      throw new Error(`${path}: PKCS#1 key${encrypted}; convert it with: openssl pkcs8 -topk8 -nocrypt -in ${path} -out key.pem`);
    }
    try {
      der = pemToDer(pem, 'PRIVATE KEY');
      const { spki } = inspectPkcs8(der);
      return await describe(await importRsaPrivateKey(der, false), await importRsaPublicKey(spki));
    } catch (cause) {
      throw new Error(`${path}: not an RSA private key of at least 2048 bits in PKCS#8 PEM`, { cause });
    }
  } finally {
    pem.fill(0);
    der?.fill(0);
  }
}

/** Key files being written, beside their final path (see {@link createKeyFile}). */
const partialKeyFiles = new Set<string>();

/** Removes the key files still being written: for a process about to exit during its startup. */
export function removePartialKeyFiles(): void {
  for (const file of partialKeyFiles) rmSync(file, { force: true });
}

/**
 * Generates a key pair and writes the private key to `path` (mode 0600; refuses to overwrite). The
 * file appears whole or not at all (written beside it, then linked), so a router stopped while it
 * writes leaves no half key behind.
 */
export async function createKeyFile(path: string, bits: number): Promise<ServerKeyPair> {
  const pair = await generateRsaKeyPair(bits, true);
  const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', pair.privateKey));
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // Its own name: replicas in containers are all pid 1, and two on one volume must not share it.
    const partial = `${path}.${process.pid}.${randomUUID()}.partial`;
    partialKeyFiles.add(partial);
    try {
      const pem = derToPemBytes(pkcs8, 'PRIVATE KEY');
      try {
        await writeFile(partial, pem, { mode: 0o600, flag: 'wx' });
      } finally {
        pem.fill(0);
      }
      await link(partial, path);
    } finally {
      await rm(partial, { force: true });
      partialKeyFiles.delete(partial);
    }
  } finally {
    pkcs8.fill(0);
  }
  return describe(await lockDown(pair.privateKey), pair.publicKey);
}

/**
 * The key in `keyFile` (created when absent), or a fresh in-memory one without a file. A key file
 * other users may read or change is used, and `onWarning` told.
 */
export async function obtainKeyPair(keyFile: string | undefined, bits: number, onWarning?: (message: string) => void): Promise<ServerKeyPair> {
  if (keyFile === undefined) return generateKeyPair(bits);
  let pair: ServerKeyPair;
  try {
    pair = await loadKeyFile(keyFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    try {
      return await createKeyFile(keyFile, bits);
    } catch (created) {
      // Replicas started at once on one volume: another wrote the key first, and all use that one.
      if ((created as NodeJS.ErrnoException).code !== 'EEXIST') throw created;
      pair = await loadKeyFile(keyFile);
    }
  }
  await checkKeyFileMode(keyFile, onWarning);
  return pair;
}

/** A key the router also opens requests with (`acceptKeyFiles`): it must exist, and is checked as the key file is. */
export async function loadAcceptedKeyFile(path: string, onWarning?: (message: string) => void): Promise<ServerKeyPair> {
  const pair = await loadKeyFile(path);
  await checkKeyFileMode(path, onWarning);
  return pair;
}

/**
 * Warns of a key file that other users may read, or anyone but its owner change: it opens every
 * request sent to this router. A group may read it (docs/deployment.md's Kubernetes Secret: 0440
 * with the router's group). Not refused: a mount's mode is not always the router's to choose.
 */
async function checkKeyFileMode(path: string, onWarning: ((message: string) => void) | undefined): Promise<void> {
  if (process.platform === 'win32' || !onWarning) return;
  const { mode } = await stat(path);
  if ((mode & 0o026) === 0) return;
  onWarning(`${path} can be read or changed by other users (mode ${(mode & 0o777).toString(8)}), and it opens every request sent to this router: chmod 600 it (or 440 for a group of the router's own)`);
}
