/**
 * The package: the wire format of request and response bodies (PROTOCOL.md, "The package").
 * Sealing and opening only; no I/O. The shared vectors test exactly this module.
 */
import {
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  KEY_ALGORITHM,
  PACKAGE_ALGORITHM,
  PAYLOAD_ALGORITHM,
  PROTOCOL_VERSION,
} from './constants.js';
import { decodeBase64, decodeBase64Into, decodedLength, encodeBase64 } from './base64.js';
import { aesGcmOpen, aesGcmSeal, generateAesKey } from '../crypto/aes-gcm.js';
import { unwrapAesKey, wrapAesKey } from '../crypto/rsa.js';
import type { Bytes } from '../crypto/subtle.js';
import { SecurityError } from '../errors.js';

export interface EncryptedPackage {
  version: string;
  algorithm: string;
  encrypted_payload: { ciphertext: string; nonce: string; tag: string };
  encrypted_aes_key: string;
  key_algorithm: string;
  payload_algorithm: string;
  /** Responses only: Unix time in seconds. */
  processed_at?: number;
}

/**
 * Seals `plaintext` to `recipient` (an RSA-OAEP-SHA256 public key): a fresh AES-256 key and
 * nonce every call. The caller owns `plaintext` and zeroes it.
 */
export async function sealPackage(plaintext: Bytes, recipient: CryptoKey, extra?: { processed_at?: number }): Promise<EncryptedPackage> {
  const aesKey = await generateAesKey();
  const [{ nonce, sealed }, wrapped] = await Promise.all([aesGcmSeal(aesKey, plaintext), wrapAesKey(aesKey, recipient)]);
  const ctLength = sealed.length - GCM_TAG_BYTES;
  return {
    version: PROTOCOL_VERSION,
    algorithm: PACKAGE_ALGORITHM,
    encrypted_payload: {
      ciphertext: encodeBase64(sealed.subarray(0, ctLength)),
      nonce: encodeBase64(nonce),
      tag: encodeBase64(sealed.subarray(ctLength)),
    },
    encrypted_aes_key: encodeBase64(new Uint8Array(wrapped)),
    key_algorithm: KEY_ALGORITHM,
    payload_algorithm: PAYLOAD_ALGORITHM,
    ...extra,
  };
}

function malformed(what: string): SecurityError {
  return new SecurityError(`malformed package: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(obj: Record<string, unknown>, name: string): string {
  const v = obj[name];
  if (typeof v !== 'string') throw malformed(`${name} missing or not a string`);
  return v;
}

function fixedBytes(text: string, bytes: number, name: string): Bytes {
  if (decodedLength(text) !== bytes) throw malformed(`${name} must be ${bytes} bytes`);
  return decodeBase64(text) as Bytes;
}

/** Checks a parsed package's shape and algorithm labels; unknown fields are ignored. */
export function checkPackage(pkg: unknown): EncryptedPackage {
  if (!isObject(pkg)) throw malformed('not a JSON object');
  if (pkg.version !== PROTOCOL_VERSION) throw malformed('unsupported version');
  if (pkg.algorithm !== PACKAGE_ALGORITHM) throw malformed('unsupported algorithm');
  if (pkg.key_algorithm !== undefined && pkg.key_algorithm !== KEY_ALGORITHM) throw malformed('unsupported key_algorithm');
  if (pkg.payload_algorithm !== undefined && pkg.payload_algorithm !== PAYLOAD_ALGORITHM) throw malformed('unsupported payload_algorithm');
  const ep = pkg.encrypted_payload;
  if (!isObject(ep)) throw malformed('encrypted_payload must be an object');
  field(ep, 'ciphertext');
  field(ep, 'nonce');
  field(ep, 'tag');
  field(pkg, 'encrypted_aes_key');
  return pkg as unknown as EncryptedPackage;
}

/**
 * Opens a package with `privateKey`. Returns the plaintext bytes, which the caller zeroes.
 * Every failure is a SecurityError; crypto failures carry one generic message.
 */
export async function openPackage(pkg: unknown, privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  const { encrypted_payload: ep, encrypted_aes_key } = checkPackage(pkg);
  const nonce = fixedBytes(ep.nonce, GCM_NONCE_BYTES, 'nonce');
  const tag = fixedBytes(ep.tag, GCM_TAG_BYTES, 'tag');
  const wrapped = decodeBase64(encrypted_aes_key) as Bytes;
  // Web Crypto wants ciphertext||tag in one buffer: decode the ciphertext straight into it.
  const ctLength = decodedLength(ep.ciphertext);
  const sealed = new Uint8Array(ctLength + GCM_TAG_BYTES);
  decodeBase64Into(ep.ciphertext, sealed);
  sealed.set(tag, ctLength);
  const aesKey = await unwrapAesKey(wrapped, privateKey);
  return aesGcmOpen(aesKey, nonce, sealed);
}

/**
 * The package as JSON text, built by concatenation: base64 and our fixed labels need no escaping,
 * and JSON.stringify would scan (and copy) a 13 MB ciphertext string once more.
 */
export function serializePackage(pkg: EncryptedPackage): string {
  const ep = pkg.encrypted_payload;
  const processedAt = pkg.processed_at === undefined ? '' : `,"processed_at":${JSON.stringify(pkg.processed_at)}`;
  return (
    `{"version":${JSON.stringify(pkg.version)},"algorithm":${JSON.stringify(pkg.algorithm)},` +
    `"encrypted_payload":{"ciphertext":"${ep.ciphertext}","nonce":"${ep.nonce}","tag":"${ep.tag}"},` +
    `"encrypted_aes_key":"${pkg.encrypted_aes_key}","key_algorithm":${JSON.stringify(pkg.key_algorithm)},` +
    `"payload_algorithm":${JSON.stringify(pkg.payload_algorithm)}${processedAt}}`
  );
}

/** Parses a package body. Anything that is not JSON is a SecurityError. */
export function parsePackage(body: string): EncryptedPackage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw malformed('not JSON');
  }
  return checkPackage(parsed);
}
