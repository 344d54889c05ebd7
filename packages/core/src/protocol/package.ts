/**
 * The package: the wire format of request and response bodies (docs/protocol.md, "The package").
 * Sealing and opening v1 packages, and the shape checks and JSON that v2 (v2.ts) shares; no I/O.
 * The shared vectors test exactly this module.
 */
import {
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  KEY_ALGORITHM,
  PACKAGE_ALGORITHM,
  PAYLOAD_ALGORITHM,
  PROTOCOL_VERSION,
} from './constants.js';
import { decodeBase64, decodedLength, encodeBase64 } from './base64.js';
import { generateAesKey, newNonce } from '../crypto/aes-gcm.js';
import { gcmPieces, sealWhole } from '../crypto/gcm/select.js';
import { unwrapAesKey, withAnyKey, wrapAesKey, type PrivateKeys } from '../crypto/rsa.js';
import type { Bytes } from '../crypto/subtle.js';
import type { AesKey } from '../crypto/gcm/types.js';
import { SecurityError } from '../errors.js';

/** A package's sealed payload: AES-256-GCM output, each part in strict base64. */
export interface EncryptedPayload {
  /** The ciphertext, as long as the plaintext. */
  ciphertext: string;
  /** The 12-byte nonce. */
  nonce: string;
  /** The 16-byte tag. */
  tag: string;
}

/** A v1 request or answer, or a v2 request (`version` "2.0", the same fields). */
export interface EncryptedPackage {
  /** `"1.0"`, or `"2.0"` for a v2 request. */
  version: string;
  /** Always `"hybrid-aes256-rsa4096"`, whatever the RSA modulus. */
  algorithm: string;
  /** The payload, sealed with AES-256-GCM. */
  encrypted_payload: EncryptedPayload;
  /** The AES key (v2: `K`), RSA-OAEP-SHA256-wrapped to the recipient, base64. */
  encrypted_aes_key: string;
  /** `"RSA-OAEP-SHA256"`. */
  key_algorithm: string;
  /** `"AES-256-GCM"`. */
  payload_algorithm: string;
  /** Responses only: Unix time in seconds. */
  processed_at?: number;
}

/** A v2 answer (docs/protocol.md, "v2 answer"): no wrapped key, the client already knows `K`. */
export interface AnswerPackage {
  /** `"2.0"`. */
  version: string;
  /** `"aes256gcm-hkdf-sha256"`. */
  algorithm: string;
  /** The completion, sealed with AES-256-GCM under the answer key. */
  encrypted_payload: EncryptedPayload;
  /** `"AES-256-GCM"`. */
  payload_algorithm: string;
  /** Unix time in seconds; informational, not authenticated. */
  processed_at?: number;
}

/** ciphertext||tag split the way the package stores it. */
export function packageFields(nonce: Bytes, sealed: Bytes): EncryptedPayload {
  const ctLength = sealed.length - GCM_TAG_BYTES;
  return {
    ciphertext: encodeBase64(sealed.subarray(0, ctLength)),
    nonce: encodeBase64(nonce),
    tag: encodeBase64(sealed.subarray(ctLength)),
  };
}

/** Everything of a package but its payload: the labels, and the wrapped key where the version has one. */
export type PackageFields = Omit<EncryptedPackage, 'encrypted_payload'> | Omit<AnswerPackage, 'encrypted_payload'>;

/** AES-256-GCM's key, 96-bit nonce and (v2) associated data for one package. */
export interface GcmParams {
  /** The AES-256-GCM key. */
  key: AesKey;
  /** A fresh 12-byte nonce, never used twice with `key`. */
  nonce: Bytes;
  /** The associated data (v2), or none (v1). */
  aad?: Bytes | undefined;
}

/**
 * A package ready to be sealed: its fields, and the key, fresh nonce and associated data to seal its
 * payload with. {@link sealWith} makes the package object; protocol/body/write.ts writes the same
 * package straight into a body buffer. One of these per package: a nonce is never used twice.
 */
export interface Sealing {
  /** The package's fields but its payload. */
  fields: PackageFields;
  /** What seals its payload. */
  params: GcmParams;
}

/** The key and associated data that open a package, and what else its version hands back (`T`). */
export type OpenKeys<T extends object = object> = {
  /** The AES-256-GCM key that opens the payload. */
  key: AesKey;
  /** The associated data it was sealed with, if any. */
  aad?: Bytes | undefined;
} & T;

/** A package checked as far as its ciphertext: its nonce and tag, and the key work still to do. */
export interface CheckedPackage<T extends object = object> {
  /** The decoded 12-byte nonce. */
  nonce: Bytes;
  /** The decoded 16-byte tag. */
  tag: Bytes;
  /** The key work (an RSA unwrap, a derivation), to be done only once the ciphertext is known to be strict base64. */
  keys(): Promise<OpenKeys<T>>;
}

/**
 * How one version opens its packages, in the one order every way of opening keeps: `check` (the
 * shape, the labels, the nonce, the tag: no key work), then the ciphertext (strict base64), then
 * `keys()`, then the decryption. So a package that is not well formed costs no RSA operation, and
 * every way refuses it with the same error. `T`: what opening hands back besides the plaintext (a
 * v2 router's answer key).
 */
export interface PackageOpener<T extends object = object> {
  /** Checks the parsed package (its ciphertext may be a stand-in); throws the SecurityError it earns. */
  check(pkg: unknown): CheckedPackage<T>;
}

/** A v1 package's key made before its package: a fresh AES-256 key, wrapped to `recipient`. It seals one package. */
export interface PackageKeyV1 {
  /** The RSA-OAEP-SHA256 public key the AES key is wrapped to. */
  readonly recipient: CryptoKey;
  /** The AES-256-GCM key. */
  readonly key: CryptoKey;
  /** `encrypted_aes_key`: the key wrapped to `recipient`, base64. */
  readonly wrapped: string;
}

/** A fresh AES-256 key wrapped to `recipient`, for {@link v1SealingForKey}: made before the package can be (client/request-keys.ts). */
export async function packageKeyV1(recipient: CryptoKey): Promise<PackageKeyV1> {
  const key = await generateAesKey();
  return { recipient, key, wrapped: encodeBase64(new Uint8Array(await wrapAesKey(key, recipient))) };
}

/** A v1 package sealed with `packageKey` and a fresh nonce. */
export function v1SealingForKey(packageKey: PackageKeyV1, extra?: { processed_at?: number }): Sealing {
  const fields = { version: PROTOCOL_VERSION, algorithm: PACKAGE_ALGORITHM, encrypted_aes_key: packageKey.wrapped, key_algorithm: KEY_ALGORITHM, payload_algorithm: PAYLOAD_ALGORITHM };
  return { fields: { ...fields, ...extra }, params: { key: packageKey.key, nonce: newNonce() } };
}

/** A v1 package to `recipient` (an RSA-OAEP-SHA256 public key): a fresh AES-256 key, wrapped, and a fresh nonce. */
export async function v1Sealing(recipient: CryptoKey, extra?: { processed_at?: number }): Promise<Sealing> {
  return v1SealingForKey(await packageKeyV1(recipient), extra);
}

/** Seals `plaintext` as `sealing` says: the package object, its fields in wire order. The caller zeroes `plaintext`. */
export async function sealWith(sealing: Sealing, plaintext: Bytes): Promise<EncryptedPackage | AnswerPackage> {
  const { key, nonce, aad } = sealing.params;
  const sealed = await sealWhole(key, nonce, aad, plaintext);
  const { version, algorithm, ...rest } = sealing.fields;
  return { version, algorithm, encrypted_payload: packageFields(nonce, sealed), ...rest } as EncryptedPackage | AnswerPackage;
}

/**
 * Seals `plaintext` to `recipient` (an RSA-OAEP-SHA256 public key): a fresh AES-256 key and
 * nonce every call. The caller owns `plaintext` and zeroes it.
 */
export async function sealPackage(plaintext: Bytes, recipient: CryptoKey, extra?: { processed_at?: number }): Promise<EncryptedPackage> {
  return (await sealWith(await v1Sealing(recipient, extra), plaintext)) as EncryptedPackage;
}

export function malformed(what: string): SecurityError {
  return new SecurityError(`malformed package: ${what}`);
}

export function isObject(v: unknown): v is Record<string, unknown> {
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

/**
 * Checks the labels and the `encrypted_payload` shape every package has: `version` and `algorithm`
 * exactly as given, `payload_algorithm` AES-256-GCM when present. Unknown fields are ignored.
 */
export function checkSealedShape(pkg: unknown, version: string, algorithm: string): Record<string, unknown> & { encrypted_payload: EncryptedPackage['encrypted_payload'] } {
  if (!isObject(pkg)) throw malformed('not a JSON object');
  if (pkg.version !== version) throw malformed('unsupported version');
  if (pkg.algorithm !== algorithm) throw malformed('unsupported algorithm');
  if (pkg.payload_algorithm !== undefined && pkg.payload_algorithm !== PAYLOAD_ALGORITHM) throw malformed('unsupported payload_algorithm');
  const ep = pkg.encrypted_payload;
  if (!isObject(ep)) throw malformed('encrypted_payload must be an object');
  field(ep, 'ciphertext');
  field(ep, 'nonce');
  field(ep, 'tag');
  return pkg as Record<string, unknown> & { encrypted_payload: EncryptedPackage['encrypted_payload'] };
}

/**
 * Checks a parsed package's shape and algorithm labels (a v1 package by default; a v2 request with
 * `version` "2.0"); unknown fields are ignored.
 */
export function checkPackage(pkg: unknown, version: string = PROTOCOL_VERSION): EncryptedPackage {
  const checked = checkSealedShape(pkg, version, PACKAGE_ALGORITHM);
  if (checked.key_algorithm !== undefined && checked.key_algorithm !== KEY_ALGORITHM) throw malformed('unsupported key_algorithm');
  field(checked, 'encrypted_aes_key');
  return checked as unknown as EncryptedPackage;
}

/** The nonce and tag of a checked package, decoded strictly, in this order (the ciphertext comes next). */
export function nonceAndTag(ep: EncryptedPackage['encrypted_payload']): { nonce: Bytes; tag: Bytes } {
  return { nonce: fixedBytes(ep.nonce, GCM_NONCE_BYTES, 'nonce'), tag: fixedBytes(ep.tag, GCM_TAG_BYTES, 'tag') };
}

/**
 * How v1 packages sealed to `privateKey`'s public key open: the AES key unwrapped with it (RSA-OAEP).
 * A router that accepts several keys (a rotation's) gives them all: each is tried in turn.
 */
export function v1Opener(privateKey: PrivateKeys): PackageOpener {
  return {
    check(pkg) {
      const { encrypted_payload: ep, encrypted_aes_key } = checkPackage(pkg);
      const wrapped = decodeBase64(encrypted_aes_key) as Bytes;
      return { ...nonceAndTag(ep), keys: async () => ({ key: await withAnyKey(privateKey, (key) => unwrapAesKey(wrapped, key)) }) };
    },
  };
}

/**
 * Opens a parsed package as `opener` says (see {@link PackageOpener} for the order). Returns the
 * plaintext, which the caller zeroes, and what the opener hands back besides. Every failure is a
 * SecurityError; crypto failures carry one generic message.
 */
export async function openWith<T extends object>(
  opener: PackageOpener<T>,
  pkg: unknown,
): Promise<{
  /** The opened payload: the caller zeroes it. */
  plaintext: Uint8Array<ArrayBuffer>;
} & T> {
  const checked = opener.check(pkg);
  const ciphertext = (pkg as { encrypted_payload: { ciphertext: string } }).encrypted_payload.ciphertext;
  const ciphertextBytes = decodeBase64(ciphertext);
  const { key, aad, ...rest } = await checked.keys();
  const gcm = await gcmPieces();
  // node:crypto opens into `target`; Web Crypto into a buffer of its own, which it returns.
  const target = new Uint8Array(gcm.streaming ? ciphertextBytes.length : 0);
  const plaintext = await gcm.open(key, checked.nonce, aad, checked.tag, ciphertextBytes.length, (sink) => sink(ciphertextBytes), target);
  return { plaintext: plaintext as Uint8Array<ArrayBuffer>, ...(rest as unknown as T) };
}

/**
 * Opens a v1 package with `privateKey`. Returns the plaintext bytes, which the caller zeroes.
 * Every failure is a SecurityError; crypto failures carry one generic message.
 */
export async function openPackage(pkg: unknown, privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  return (await openWith(v1Opener(privateKey), pkg)).plaintext;
}

/**
 * The package (any version; a v2 answer has no `encrypted_aes_key` nor `key_algorithm`) as JSON
 * text, built by concatenation: base64 and our fixed labels need no escaping, and JSON.stringify
 * would scan (and copy) a 13 MB ciphertext string once more.
 */
export function serializePackage(pkg: EncryptedPackage | AnswerPackage): string {
  const ep = pkg.encrypted_payload;
  const wrapped = 'encrypted_aes_key' in pkg ? `"encrypted_aes_key":"${pkg.encrypted_aes_key}","key_algorithm":${JSON.stringify(pkg.key_algorithm)},` : '';
  const processedAt = pkg.processed_at === undefined ? '' : `,"processed_at":${JSON.stringify(pkg.processed_at)}`;
  return (
    `{"version":${JSON.stringify(pkg.version)},"algorithm":${JSON.stringify(pkg.algorithm)},` +
    `"encrypted_payload":{"ciphertext":"${ep.ciphertext}","nonce":"${ep.nonce}","tag":"${ep.tag}"},` +
    `${wrapped}"payload_algorithm":${JSON.stringify(pkg.payload_algorithm)}${processedAt}}`
  );
}

/** A package body's JSON, not yet checked. Anything that is not JSON is a SecurityError. */
export function parseJsonPackage(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw malformed('not JSON');
  }
}

/** Parses a v1 package body. Anything that is not JSON is a SecurityError. */
export function parsePackage(body: string): EncryptedPackage {
  return checkPackage(parseJsonPackage(body));
}
