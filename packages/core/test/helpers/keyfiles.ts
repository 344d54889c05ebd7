/**
 * Test helpers for password-protected key files: the shared key files, the openssl CLI in a temp
 * dir, and an independent PBES2 writer on node:crypto (so our reader is checked against code that
 * shares nothing with it but the DER writer) that can write the variants other tools produce.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { derEncode, derInteger, derNull, derOctetString, derOid, derSequence, oid, readSequence, TAG_INTEGER, TAG_SEQUENCE } from '../../src/crypto/der.js';
import { subtle, type Bytes } from '../../src/crypto/subtle.js';

export const KEYFILES_DIR = fileURLToPath(new URL('../../../../test-vectors/keyfiles/', import.meta.url));
export const KEYFILE_PASSWORD = 'correct horse battery';

export function readKeyfile(name: string): string {
  return readFileSync(join(KEYFILES_DIR, name), 'utf8');
}

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

/** Runs openssl with the password in $NOMYO_TEST_PASS (never on the command line). */
export function openssl(args: string[], password?: string): { status: number | null; stdout: Buffer; stderr: string } {
  const env = { ...process.env, NOMYO_TEST_PASS: password ?? '' };
  const r = spawnSync('openssl', args, { env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** A fresh temp directory for `fn`, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'nomyo-pbes2-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The SPKI DER of a PKCS#8 RSA private key, through Web Crypto's JWK export. */
export async function spkiOf(pkcs8: Bytes): Promise<Uint8Array> {
  const alg = { name: 'RSA-OAEP', hash: 'SHA-256' };
  const priv = await subtle().importKey('pkcs8', pkcs8, alg, true, ['decrypt']);
  const { n, e } = await subtle().exportKey('jwk', priv);
  const pub = await subtle().importKey('jwk', { kty: 'RSA', n: n!, e: e! }, alg, true, ['encrypt']);
  return new Uint8Array(await subtle().exportKey('spki', pub));
}

export const OIDS = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  sha1: '1.2.840.113549.2.7',
  sha224: '1.2.840.113549.2.8',
  sha256: '1.2.840.113549.2.9',
  sha384: '1.2.840.113549.2.10',
  sha512: '1.2.840.113549.2.11',
  aes128: '2.16.840.1.101.3.4.1.2',
  aes192: '2.16.840.1.101.3.4.1.22',
  aes256: '2.16.840.1.101.3.4.1.42',
} as const;

export interface Pbes2Fields {
  schemeOid?: string;
  kdfOid?: string;
  salt: Uint8Array;
  /** A number, or raw INTEGER contents for counts no JS number holds. */
  iterations: number | Uint8Array;
  keyLength?: number;
  /** undefined: prf omitted (SHA-1 by default); `params: false` omits the NULL. */
  prf?: { oid: string; params?: boolean };
  cipherOid: string;
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

/** Writes an EncryptedPrivateKeyInfo from its fields, whatever they say. */
export function buildEpki(f: Pbes2Fields): Uint8Array {
  const count = typeof f.iterations === 'number' ? derInteger(f.iterations) : derEncode(TAG_INTEGER, f.iterations);
  const params = [derOctetString(f.salt), count];
  if (f.keyLength !== undefined) params.push(derInteger(f.keyLength));
  if (f.prf) params.push(f.prf.params === false ? derSequence(derOid(oid(f.prf.oid))) : derSequence(derOid(oid(f.prf.oid)), derNull()));
  const kdf = derSequence(derOid(oid(f.kdfOid ?? OIDS.pbkdf2)), derSequence(...params));
  const cipher = derSequence(derOid(oid(f.cipherOid)), derOctetString(f.iv));
  return derSequence(derSequence(derOid(oid(f.schemeOid ?? OIDS.pbes2)), derSequence(kdf, cipher)), derOctetString(f.ciphertext));
}

/** Reads back the fields of a PBES2/PBKDF2 file (ours or another tool's), for assertions. */
export function parseEpki(der: Uint8Array): Pbes2Fields & { prfParamsNull?: boolean | undefined } {
  const epki = readSequence(der);
  const alg = epki.sequence();
  alg.oid();
  const pbes2 = alg.sequence();
  const kdf = pbes2.sequence();
  kdf.oid();
  const p = kdf.sequence();
  const salt = p.octetString();
  const iterations = p.integer();
  const keyLength = p.peekTag() === TAG_INTEGER ? p.integer() : undefined;
  let prf: Pbes2Fields['prf'];
  let prfParamsNull: boolean | undefined;
  if (p.peekTag() === TAG_SEQUENCE) {
    const r = p.sequence();
    prf = { oid: dotted(r.oid()) };
    prfParamsNull = !r.done && r.read().tag === 0x05;
  }
  const enc = pbes2.sequence();
  const cipherOid = dotted(enc.oid());
  const iv = enc.octetString();
  const ciphertext = epki.octetString();
  return { salt, iterations, ...(keyLength === undefined ? {} : { keyLength }), ...(prf ? { prf } : {}), prfParamsNull, cipherOid, iv, ciphertext };
}

function dotted(encoded: Uint8Array): string {
  for (const [, v] of Object.entries(OIDS)) if (Buffer.from(oid(v)).equals(Buffer.from(encoded))) return v;
  return `?${Buffer.from(encoded).toString('hex')}`;
}

const NODE_HASH = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' } as const;

/** PBES2 on node:crypto, independent of the module under test. */
export function nodeEncrypt(
  pkcs8: Uint8Array,
  password: string,
  o: { hash?: keyof typeof NODE_HASH; bits?: 128 | 192 | 256; iterations?: number; saltBytes?: number; keyLength?: number; prf?: 'omit' | 'no-null' | 'null' } = {},
): Uint8Array {
  const hash = o.hash ?? 'SHA-256';
  const bits = o.bits ?? 256;
  const iterations = o.iterations ?? 1000;
  const salt = randomBytes(o.saltBytes ?? 16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, bits / 8, NODE_HASH[hash]);
  const c = createCipheriv(`aes-${bits}-cbc`, key, iv);
  const ciphertext = Buffer.concat([c.update(pkcs8), c.final()]);
  const prfOid = { 'SHA-1': OIDS.sha1, 'SHA-256': OIDS.sha256, 'SHA-384': OIDS.sha384, 'SHA-512': OIDS.sha512 }[hash];
  const prfMode = o.prf ?? (hash === 'SHA-1' ? 'omit' : 'null');
  return buildEpki({
    salt,
    iterations,
    ...(o.keyLength === undefined ? {} : { keyLength: o.keyLength }),
    ...(prfMode === 'omit' ? {} : { prf: { oid: prfOid, params: prfMode === 'null' } }),
    cipherOid: { 128: OIDS.aes128, 192: OIDS.aes192, 256: OIDS.aes256 }[bits],
    iv,
    ciphertext,
  });
}
