/**
 * Password-protected private keys in the standard PKCS#8 form (RFC 5958 EncryptedPrivateKeyInfo)
 * with PBES2 (RFC 8018): PBKDF2-HMAC-SHA-1/256/384/512 and AES-128/192/256-CBC, on Web Crypto
 * alone. This is what `openssl pkcs8 -topk8 -v2 ...` and Python `cryptography` write, so key files
 * move freely between those tools and us. We write PBKDF2-HMAC-SHA256 + AES-256-CBC, encoded as
 * OpenSSL 3 encodes it (prf with NULL parameters, no keyLength).
 */
import { SecureByteContext } from '../memory/context.js';
import { JsSecureMemory } from '../memory/js-memory.js';
import { loadNativeMemory } from '../memory/native-loader.js';
import type { SecureMemory } from '../memory/secure-memory.js';
import { InvalidArgumentError, KeyFileError, KeyPasswordError, SecurityError } from '../errors.js';
import { DerError, TAG_INTEGER, TAG_SEQUENCE, bytesEqual, derInteger, derNull, derOctetString, derOid } from './der.js';
import { derSequence, oid, oidToString, readSequence, type DerReader } from './der.js';
import { derToPem, firstPemLabel, hasPemBlock, pemToDer, type PemLabel } from './pem.js';
import { randomBytes, subtle, type Bytes } from './subtle.js';

/** PBKDF2 iterations we write by default (OWASP 2023 guidance for PBKDF2-HMAC-SHA256). */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;
/** The shortest password {@link encryptPrivateKeyInfo} accepts, in characters (code points). */
export const MIN_PASSWORD_LENGTH = 8;
/** Above this a file is refused unread: a huge count would make opening it a denial of service. */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;

const SALT_BYTES = 16;
const AES_BLOCK = 16;
const MAX_SALT_BYTES = 1024;

const PBES2 = oid('1.2.840.113549.1.5.13');
const PBKDF2 = oid('1.2.840.113549.1.5.12');
const HMAC_SHA256 = oid('1.2.840.113549.2.9');
const AES256_CBC = oid('2.16.840.1.101.3.4.1.42');
type Table<T> = ReadonlyArray<readonly [Uint8Array, T]>;
const PRFS: Table<string> = [
  [oid('1.2.840.113549.2.7'), 'SHA-1'], [HMAC_SHA256, 'SHA-256'], [oid('1.2.840.113549.2.10'), 'SHA-384'], [oid('1.2.840.113549.2.11'), 'SHA-512'],
];
const CIPHERS: Table<number> = [[oid('2.16.840.1.101.3.4.1.2'), 128], [oid('2.16.840.1.101.3.4.1.22'), 192], [AES256_CBC, 256]];

/** Schemes other tools write that we refuse, named so the error says what the file uses. */
const KNOWN: Record<string, string> = {
  '1.3.6.1.4.1.11591.4.11': 'scrypt', '1.2.840.113549.2.8': 'hmacWithSHA224',
  '1.2.840.113549.3.7': 'DES-EDE3-CBC', '1.3.14.3.2.7': 'DES-CBC', '1.2.840.113549.3.2': 'RC2-CBC',
  '2.16.840.1.101.3.4.1.6': 'AES-128-GCM', '2.16.840.1.101.3.4.1.26': 'AES-192-GCM', '2.16.840.1.101.3.4.1.46': 'AES-256-GCM',
};

function schemeName(dotted: string): string {
  // PKCS#5 v1.5 (PBES1) and PKCS#12 PBE: DES, RC2 and RC4 with MD2/MD5/SHA-1 key derivation.
  if (/^1\.2\.840\.113549\.1\.5\.(1|3|4|6|10|11)$/.test(dotted)) return `PBES1 (OID ${dotted})`;
  if (dotted.startsWith('1.2.840.113549.1.12.1.')) return `PKCS#12 PBE (OID ${dotted})`;
  return KNOWN[dotted] ?? `OID ${dotted}`;
}

const WRONG_PASSWORD = 'wrong password or corrupt key file';

/** How a key file is encrypted: PBKDF2's iterations, and the memory the password's bytes live in (see deriveAesKey). */
export interface PasswordOptions {
  iterations?: number | undefined;
  memory?: SecureMemory | undefined;
}
const PASSWORD_REQUIRED = 'this key file is password-protected: a password is required';

function unsupported(kind: string, encoded: Uint8Array): KeyFileError {
  const name = schemeName(oidToString(encoded));
  return new KeyFileError(`unsupported ${kind} in key file: ${name} (supported: PBES2 with PBKDF2-HMAC-SHA1/256/384/512 and AES-CBC)`);
}

function lookup<T>(table: Table<T>, encoded: Uint8Array): T | undefined {
  return table.find(([o]) => bytesEqual(o, encoded))?.[1];
}

interface Pbes2Params { salt: Bytes; iterations: number; hash: string; keyBits: number; iv: Bytes; ciphertext: Bytes }

/** The PBES2 parameters of an EncryptedPrivateKeyInfo. Any structural problem is a KeyFileError. */
function parseEncryptedPrivateKeyInfo(der: Uint8Array): Pbes2Params {
  try {
    const epki = readSequence(der, 'EncryptedPrivateKeyInfo');
    const alg = epki.sequence('encryptionAlgorithm');
    const scheme = alg.oid();
    if (!bytesEqual(scheme, PBES2)) throw unsupported('encryption scheme', scheme);
    const pbes2 = alg.sequence('PBES2-params');
    alg.end('encryptionAlgorithm');

    const kdf = pbes2.sequence('keyDerivationFunc');
    const kdfOid = kdf.oid();
    if (!bytesEqual(kdfOid, PBKDF2)) throw unsupported('key derivation function', kdfOid);
    const p = kdf.sequence('PBKDF2-params');
    kdf.end('keyDerivationFunc');
    // The salt is a CHOICE; RFC 8018 reserves `otherSource` (a SEQUENCE) and no tool writes it.
    if (p.peekTag() === TAG_SEQUENCE) throw new KeyFileError('unsupported PBKDF2 salt source in key file: only an explicit salt is supported');
    const salt = p.octetString('PBKDF2 salt');
    if (salt.length === 0 || salt.length > MAX_SALT_BYTES) throw new KeyFileError(`corrupt key file: PBKDF2 salt of ${salt.length} bytes`);
    const iterations = p.integer('PBKDF2 iteration count');
    if (iterations < 1) throw new KeyFileError('corrupt key file: PBKDF2 iteration count is 0');
    if (iterations > MAX_PBKDF2_ITERATIONS) {
      throw new KeyFileError(`refusing key file: PBKDF2 iteration count ${iterations} is above the limit of ${MAX_PBKDF2_ITERATIONS}`);
    }
    const keyLength = p.peekTag() === TAG_INTEGER ? p.integer('PBKDF2 key length') : undefined;
    const hash = p.peekTag() === TAG_SEQUENCE ? readPrf(p.sequence('PBKDF2 prf')) : 'SHA-1'; // RFC 8018 DEFAULT
    p.end('PBKDF2-params');

    const enc = pbes2.sequence('encryptionScheme');
    pbes2.end('PBES2-params');
    const cipherOid = enc.oid();
    const keyBits = lookup(CIPHERS, cipherOid);
    if (keyBits === undefined) throw unsupported('cipher', cipherOid);
    const iv = enc.octetString('AES-CBC IV');
    enc.end('encryptionScheme');
    if (iv.length !== AES_BLOCK) throw new KeyFileError(`corrupt key file: AES-CBC IV of ${iv.length} bytes`);
    if (keyLength !== undefined && keyLength * 8 !== keyBits) {
      throw new KeyFileError(`corrupt key file: PBKDF2 key length ${keyLength} does not match AES-${keyBits}`);
    }

    const ciphertext = epki.octetString('encryptedData');
    epki.end('EncryptedPrivateKeyInfo');
    if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0) {
      throw new KeyFileError('corrupt key file: the encrypted data is not a whole number of AES blocks');
    }
    // Copies: Web Crypto wants ArrayBuffer-backed views, and the caller's buffer may be anything.
    return { salt: new Uint8Array(salt), iterations, hash, keyBits, iv: new Uint8Array(iv), ciphertext: new Uint8Array(ciphertext) };
  } catch (e) {
    if (e instanceof DerError) throw new KeyFileError(`corrupt or unrecognised encrypted key file: ${e.message}`);
    throw e;
  }
}

function readPrf(prf: DerReader): string {
  const prfOid = prf.oid('PBKDF2 prf');
  if (!prf.done) prf.null(); // OpenSSL writes NULL parameters, others omit them: both are seen.
  prf.end('PBKDF2 prf');
  const hash = lookup(PRFS, prfOid);
  if (hash === undefined) throw unsupported('PBKDF2 PRF', prfOid);
  return hash;
}

/**
 * True when `der` is exactly one PKCS#8 v1 PrivateKeyInfo, in outline. It is all PBES2 gives us to
 * tell a right password from a wrong one past the padding; CBC has no MAC, so damage inside the key
 * body (or bit flips in the IV that keep this outline) is not caught here but when the key is used.
 */
function isPrivateKeyInfo(der: Uint8Array): boolean {
  try {
    const pki = readSequence(der, 'PrivateKeyInfo');
    if (pki.integer('version') !== 0) return false;
    const alg = pki.sequence('privateKeyAlgorithm');
    alg.oid();
    if (!alg.done) alg.read();
    alg.end();
    pki.octetString('privateKey');
    return true;
  } catch {
    return false;
  }
}

/**
 * An AES-CBC key from PBKDF2; deriveKey keeps the derived bytes inside Web Crypto, out of JS memory.
 * The password's bytes live in `memory` (a client's, as its `secureMemory` option chose) until they
 * are zeroed; without one, in @nomyo/native's locked, dump-excluded memory when it is installed.
 */
async function deriveAesKey(password: string, salt: Bytes, iterations: number, hash: string, bits: number, usage: KeyUsage, memory?: SecureMemory): Promise<CryptoKey> {
  // UTF-8 exactly as given, no Unicode normalisation: what OpenSSL and Python cryptography do.
  const secure = new SecureByteContext(memory ?? (await loadNativeMemory()).memory ?? new JsSecureMemory());
  return secure.use(secure.encodeUtf8(password), async (pw) => {
    try {
      const base = await subtle().importKey('raw', pw, 'PBKDF2', false, ['deriveKey']);
      return await subtle().deriveKey({ name: 'PBKDF2', salt, iterations, hash }, base, { name: 'AES-CBC', length: bits }, false, [usage]);
    } catch (cause) {
      if (bits === 192) throw new KeyFileError("AES-192-CBC is not supported by this runtime's Web Crypto", { cause });
      throw new KeyFileError(`PBKDF2 with ${hash} failed in this runtime's Web Crypto`, { cause });
    }
  });
}

/**
 * Encrypts a PKCS#8 PrivateKeyInfo into an EncryptedPrivateKeyInfo (PBES2, PBKDF2-HMAC-SHA256 with a
 * 16-byte random salt, AES-256-CBC with a 16-byte random IV), readable by OpenSSL and Python cryptography.
 * @throws InvalidArgumentError for a password under {@link MIN_PASSWORD_LENGTH} characters, a bad
 * iteration count or input that is not a PrivateKeyInfo.
 * @example
 * const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', privateKey));
 * const encrypted = await encryptPrivateKeyInfo(pkcs8, 'correct horse battery');
 */
export async function encryptPrivateKeyInfo(pkcs8Der: Uint8Array, password: string, options: PasswordOptions = {}): Promise<Bytes> {
  if (typeof password !== 'string' || [...password].length < MIN_PASSWORD_LENGTH) {
    throw new InvalidArgumentError(`the key file password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const iterations = options.iterations ?? DEFAULT_PBKDF2_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
    throw new InvalidArgumentError(`iterations must be an integer from 1 to ${MAX_PBKDF2_ITERATIONS}`);
  }
  if (!isPrivateKeyInfo(pkcs8Der)) throw new InvalidArgumentError('not a PKCS#8 PrivateKeyInfo (DER)');
  const salt = randomBytes(SALT_BYTES) as Bytes;
  const iv = randomBytes(AES_BLOCK) as Bytes;
  const key = await deriveAesKey(password, salt, iterations, 'SHA-256', 256, 'encrypt', options.memory);
  const copied = !(pkcs8Der.buffer instanceof ArrayBuffer);
  const plain = (copied ? new Uint8Array(pkcs8Der) : pkcs8Der) as Bytes;
  let ciphertext: Uint8Array;
  try {
    ciphertext = new Uint8Array(await subtle().encrypt({ name: 'AES-CBC', iv }, key, plain));
  } finally {
    if (copied) plain.fill(0);
  }
  const prf = derSequence(derOid(HMAC_SHA256), derNull());
  const kdf = derSequence(derOid(PBKDF2), derSequence(derOctetString(salt), derInteger(iterations), prf));
  const cipher = derSequence(derOid(AES256_CBC), derOctetString(iv));
  return derSequence(derSequence(derOid(PBES2), derSequence(kdf, cipher)), derOctetString(ciphertext));
}

/**
 * Decrypts an EncryptedPrivateKeyInfo (PBES2 + PBKDF2 + AES-CBC, as OpenSSL and Python write it)
 * into the PKCS#8 PrivateKeyInfo DER. The result holds the private key: zero it when done.
 * @throws KeyPasswordError for a wrong password or damaged ciphertext (not told apart). PBES2 has no
 * MAC: damage inside the key body can decrypt to a wrong key that only fails when it is used.
 * @throws KeyFileError for a malformed file, an unsupported scheme or an iteration count above
 * {@link MAX_PBKDF2_ITERATIONS}.
 * @example
 * const pkcs8 = await decryptPrivateKeyInfo(encrypted, 'correct horse battery');
 * const key = await importRsaPrivateKey(pkcs8, false);
 * pkcs8.fill(0);
 */
export async function decryptPrivateKeyInfo(der: Uint8Array, password: string, memory?: SecureMemory): Promise<Bytes> {
  if (typeof password !== 'string') throw new InvalidArgumentError('the password must be a string');
  const params = parseEncryptedPrivateKeyInfo(der);
  // Files written by other tools may have any password length, but never an empty one we accept.
  if (password.length === 0) throw new KeyPasswordError(PASSWORD_REQUIRED);
  const key = await deriveAesKey(password, params.salt, params.iterations, params.hash, params.keyBits, 'decrypt', memory);
  let plain: Bytes;
  try {
    plain = new Uint8Array(await subtle().decrypt({ name: 'AES-CBC', iv: params.iv }, key, params.ciphertext));
  } catch {
    throw new KeyPasswordError(WRONG_PASSWORD);
  }
  // A wrong password passes the padding check about once in 256 tries; the structure check catches
  // those, with the same error, so nothing tells a padding failure from a parse failure.
  if (!isPrivateKeyInfo(plain)) {
    plain.fill(0);
    throw new KeyPasswordError(WRONG_PASSWORD);
  }
  return plain;
}

/**
 * {@link encryptPrivateKeyInfo} as an `ENCRYPTED PRIVATE KEY` PEM, the text `openssl pkey` reads.
 * @example
 * await writeFile('key.pem', await encryptPrivateKeyPem(pkcs8, password), { mode: 0o600 });
 */
export async function encryptPrivateKeyPem(pkcs8Der: Uint8Array, password: string, options: PasswordOptions = {}): Promise<string> {
  return derToPem(await encryptPrivateKeyInfo(pkcs8Der, password, options), 'ENCRYPTED PRIVATE KEY');
}

function pemBlock(pem: string | Uint8Array, label: PemLabel): Bytes {
  try {
    return pemToDer(pem, label);
  } catch (cause) {
    if (cause instanceof SecurityError) throw new KeyFileError(`corrupt key file: malformed ${label} PEM block (base64 or END line)`, { cause });
    throw cause;
  }
}

/** Whether a PEM key file (its text, or its bytes) holds an `ENCRYPTED PRIVATE KEY` block. */
export function isEncryptedPem(pem: string | Uint8Array): boolean {
  return hasPemBlock(pem, 'ENCRYPTED PRIVATE KEY');
}

/**
 * The PKCS#8 PrivateKeyInfo DER in a PEM key file: `PRIVATE KEY` as is, `ENCRYPTED PRIVATE KEY`
 * decrypted with `password`. The result holds the private key: zero it when done.
 * @throws KeyPasswordError when an encrypted file has no password or the wrong one.
 * @throws KeyFileError for PKCS#1 `RSA PRIVATE KEY` files (convert them with `openssl pkcs8 -topk8`),
 * other PEM types and corrupt files.
 * Give the file's bytes rather than its text: a key stored unencrypted then never becomes a string
 * (zero the bytes once read).
 * @example
 * const bytes = await readFile('key.pem');
 * const pkcs8 = await readPrivateKeyPem(bytes, process.env.NOMYO_KEY_PASSWORD);
 * bytes.fill(0);
 */
export async function readPrivateKeyPem(pem: string | Uint8Array, password?: string, memory?: SecureMemory): Promise<Bytes> {
  if (typeof pem !== 'string' && !(pem instanceof Uint8Array)) throw new InvalidArgumentError('the key file must be PEM text, or its bytes');
  if (isEncryptedPem(pem)) {
    if (password === undefined || password === '') throw new KeyPasswordError(PASSWORD_REQUIRED);
    return decryptPrivateKeyInfo(pemBlock(pem, 'ENCRYPTED PRIVATE KEY'), password, memory);
  }
  if (hasPemBlock(pem, 'PRIVATE KEY')) {
    const der = pemBlock(pem, 'PRIVATE KEY');
    if (!isPrivateKeyInfo(der)) {
      der.fill(0);
      throw new KeyFileError('corrupt key file: the PRIVATE KEY block is not a PKCS#8 PrivateKeyInfo');
    }
    return der;
  }
  if (hasPemBlock(pem, 'RSA PRIVATE KEY')) {
    throw new KeyFileError('this is a PKCS#1 "RSA PRIVATE KEY" file; convert it to PKCS#8 with: openssl pkcs8 -topk8 -in old.pem -out new.pem');
  }
  const found = firstPemLabel(pem);
  throw new KeyFileError(`expected a PEM "PRIVATE KEY" or "ENCRYPTED PRIVATE KEY" block${found ? `, found "${found}"` : ''}`);
}
