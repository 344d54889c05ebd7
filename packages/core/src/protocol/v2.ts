/**
 * Wire protocol v2 (docs/protocol.md, "v2 request" and "v2 answer"): the request's AES key `K` and its headers are bound together
 * (AES-GCM associated data), and the answer is sealed with HKDF-SHA256(`K`, payload id), which only
 * the router that opened the request can know. Both sides are here, as v1's are in package.ts; no I/O.
 *
 * `K` is the one raw key v2 handles: the caller owns its bytes (secure memory on the client) and
 * zeroes them as soon as these functions return. Nothing exports the CryptoKeys made from it (in
 * Node.js they are node:crypto's KeyObjects: see crypto/gcm/types.ts NodeAesKey and crypto/hkdf.ts).
 */
import {
  AES_KEY_BYTES,
  KEY_ALGORITHM,
  PACKAGE_ALGORITHM,
  PAYLOAD_ALGORITHM,
  PROTOCOL_V2_VERSION,
  V2_ANSWER_AAD_PREFIX,
  V2_ANSWER_ALGORITHM,
  V2_ANSWER_KEY_INFO_PREFIX,
  V2_ERROR_AAD_PREFIX,
  V2_REQUEST_AAD_PREFIX,
} from './constants.js';
import { decodeBase64, encodeBase64 } from './base64.js';
import {
  checkPackage,
  checkSealedShape,
  nonceAndTag,
  openWith,
  sealWith,
  type AnswerPackage,
  type EncryptedPackage,
  type PackageOpener,
  type Sealing,
} from './package.js';
import { newNonce } from '../crypto/aes-gcm.js';
import { importAesKey } from '../crypto/gcm/select.js';
import type { AesKey } from '../crypto/gcm/types.js';
import { deriveAesKey, importHkdfKey, type HkdfKey } from '../crypto/hkdf.js';
import { rsaDecryptKey, rsaEncryptKey, withAnyKey, type PrivateKeys } from '../crypto/rsa.js';
import type { Bytes } from '../crypto/subtle.js';
import { InvalidArgumentError } from '../errors.js';
import { lazyPromise } from '../lazy-promise.js';

const encoder = new TextEncoder();

/** What a v2 request is bound to: its X-Payload-ID and X-Security-Tier (undefined: none sent). */
export interface RequestBinding {
  /** The `X-Payload-ID` value. */
  payloadId: string;
  /** The `X-Security-Tier` value, or undefined when the header is not sent. */
  tier: string | undefined;
}

/** What a v2 request's `K` gives besides the payload's own key. */
export interface RequestKeys {
  /** The key that opens (client) or seals (router) this request's answer, derived once awaited (a streamed answer never needs it). */
  answerKey: Promise<AesKey>;
  /** `K` as HKDF key material: a streamed answer's keys come from it. */
  kdfKey: HkdfKey;
}

/** `request_aad` = UTF-8("nomyo/2 request\n" + payload_id + "\n" + tier), tier empty when none is sent. */
export function requestAad(binding: RequestBinding): Bytes {
  return encoder.encode(`${V2_REQUEST_AAD_PREFIX}${binding.payloadId}\n${binding.tier ?? ''}`);
}

/** `answer_aad` = UTF-8("nomyo/2 answer\n" + payload_id). */
export function answerAad(payloadId: string): Bytes {
  return encoder.encode(V2_ANSWER_AAD_PREFIX + payloadId);
}

/** The associated data of a sealed error: UTF-8("nomyo/2 error\n" + payload_id). */
export function errorAad(payloadId: string): Bytes {
  return encoder.encode(V2_ERROR_AAD_PREFIX + payloadId);
}

/**
 * `answer_key` = HKDF-SHA256(IKM = `k`, salt = empty, info = "nomyo/2 answer key\n" + payload_id),
 * as an AES-256-GCM key for `usage` (the router seals with it, the client opens).
 */
export async function deriveAnswerKey(k: Bytes, payloadId: string, usage: 'encrypt' | 'decrypt'): Promise<AesKey> {
  return deriveAesKey(await importHkdfKey(k), answerKeyInfo(payloadId), usage);
}

/** The HKDF info of the answer key: UTF-8("nomyo/2 answer key\n" + payload_id). */
function answerKeyInfo(payloadId: string): Bytes {
  return encoder.encode(V2_ANSWER_KEY_INFO_PREFIX + payloadId);
}

/**
 * A request's `K` made ready to seal one request: imported as the payload's AES-256-GCM key and as
 * HKDF key material, and wrapped to the router's key. Its raw bytes are no longer needed (the caller
 * has zeroed them): see {@link requestKeyV2}. It seals one request, never two.
 */
export interface RequestKeyV2 {
  /** The router's public key `K` is wrapped to. */
  readonly recipient: CryptoKey;
  /** `K` as the AES-256-GCM key that seals the payload. */
  readonly key: AesKey;
  /** `encrypted_aes_key`: `K` under RSA-OAEP-SHA256 with `recipient`, base64. */
  readonly wrapped: string;
  /** `K` as HKDF key material (see crypto/hkdf.ts). */
  readonly kdfKey: HkdfKey;
}

/**
 * Client: `k` (32 bytes, fresh per request) imported and wrapped to the router's key, ready for
 * {@link requestSealingForKeyV2}; nothing of it depends on the request, so it can be made before the
 * request is (client/request-keys.ts). The caller zeroes `k` as soon as this resolves.
 */
export async function requestKeyV2(k: Bytes, recipient: CryptoKey): Promise<RequestKeyV2> {
  if (k.length !== AES_KEY_BYTES) throw new InvalidArgumentError(`K must be ${AES_KEY_BYTES} bytes`);
  // The three uses of K run side by side; each copies it.
  const [key, wrapped, kdfKey] = await Promise.all([importAesKey(k, 'encrypt'), rsaEncryptKey(k, recipient), importHkdfKey(k)]);
  return { recipient, key, wrapped: encodeBase64(new Uint8Array(wrapped)), kdfKey };
}

/**
 * Client: a request sealed with `requestKey`'s `K` bound to `binding`, and the key that opens this
 * request's answer, and only it; that key is derived (from `kdfKey`) only once something awaits it,
 * after the request has gone, and never for a streamed answer. `kdfKey` also derives the keys of a streamed
 * answer (stream/records.ts).
 */
export function requestSealingForKeyV2(requestKey: RequestKeyV2, binding: RequestBinding): { sealing: Sealing } & RequestKeys {
  const { key, wrapped, kdfKey } = requestKey;
  // Derived when a whole answer or a sealed error arrives: a streamed answer never needs it.
  const answerKey = lazyPromise(() => deriveAesKey(kdfKey, answerKeyInfo(binding.payloadId), 'decrypt'));
  return {
    sealing: {
      fields: {
        version: PROTOCOL_V2_VERSION,
        algorithm: PACKAGE_ALGORITHM,
        encrypted_aes_key: wrapped,
        key_algorithm: KEY_ALGORITHM,
        payload_algorithm: PAYLOAD_ALGORITHM,
      },
      params: { key, nonce: newNonce(), aad: requestAad(binding) },
    },
    answerKey,
    kdfKey,
  };
}

/**
 * Client: `requestKeyV2` and `requestSealingForKeyV2` in one: a request sealed with `k`
 * (32 bytes, fresh per request) bound to `binding`, `k` wrapped to the router's key, and the key
 * that opens this request's answer. The caller zeroes `k` as soon as this resolves: nothing reads
 * it afterwards.
 */
export async function requestSealingV2(
  k: Bytes,
  recipient: CryptoKey,
  binding: RequestBinding,
): Promise<{
  /** The request package's fields and what seals its payload. */
  sealing: Sealing;
} & RequestKeys> {
  return requestSealingForKeyV2(await requestKeyV2(k, recipient), binding);
}

/**
 * Client: seals `plaintext` as {@link requestSealingV2} says. Returns the request package and the
 * answer key. The caller zeroes `k` (and `plaintext`) as soon as this resolves.
 */
export async function sealRequestV2(
  plaintext: Bytes,
  k: Bytes,
  recipient: CryptoKey,
  binding: RequestBinding,
): Promise<{
  /** The request package. */
  package: EncryptedPackage;
  /** The key that opens its answer, derived once awaited. */
  answerKey: Promise<AesKey>;
}> {
  const { sealing, answerKey } = await requestSealingV2(k, recipient, binding);
  return { package: (await sealWith(sealing, plaintext)) as EncryptedPackage, answerKey };
}

/** Checks a parsed v2 answer's shape and labels; unknown fields are ignored. */
export function checkAnswerV2(pkg: unknown): AnswerPackage {
  return checkSealedShape(pkg, PROTOCOL_V2_VERSION, V2_ANSWER_ALGORITHM) as unknown as AnswerPackage;
}

/**
 * Client: how the answer to the request sealed for `payloadId` opens, with the answer key
 * {@link requestSealingV2} returned (awaited only once the answer is well formed). `aad` tells an
 * answer ({@link answerAad}, the default) from a sealed error ({@link errorAad}).
 */
export function answerOpenerV2(answerKey: AesKey | Promise<AesKey>, payloadId: string, aad: Bytes = answerAad(payloadId)): PackageOpener {
  return {
    check: (pkg) => ({ ...nonceAndTag(checkAnswerV2(pkg).encrypted_payload), keys: async () => ({ key: await answerKey, aad }) }),
  };
}

/**
 * Client: opens the answer to the request sealed for `payloadId`, with the `answerKey`
 * {@link sealRequestV2} returned. Anything else (a v1 package, another request's answer, a forgery,
 * a tampered or mislabelled one) is a SecurityError; crypto failures carry the one generic message.
 * Returns the plaintext bytes, which the caller zeroes.
 */
export async function openAnswerV2(pkg: unknown, answerKey: AesKey, payloadId: string): Promise<Uint8Array<ArrayBuffer>> {
  return (await openWith(answerOpenerV2(answerKey, payloadId), pkg)).plaintext;
}

/**
 * Router: how a v2 request opens, with the `binding` rebuilt from the headers it received. A header
 * changed on the way, or a package sealed without the binding, fails like any package that does not
 * open (SecurityError). Opening hands back the key to seal the answer with, derived only once it is
 * awaited (the request goes on to the model first: a stream needs it only for an error), and `K` as
 * HKDF key material. A router that accepts several keys (a rotation's) gives them all: each is tried.
 */
export function requestOpenerV2(privateKey: PrivateKeys, binding: RequestBinding): PackageOpener<RequestKeys> {
  return {
    check(pkg) {
      const { encrypted_payload: ep, encrypted_aes_key } = checkPackage(pkg, PROTOCOL_V2_VERSION);
      return {
        ...nonceAndTag(ep),
        keys: async () => {
          const { openKey, answerKey, kdfKey } = await requestKeysV2(encrypted_aes_key, privateKey, binding);
          return { key: openKey, aad: requestAad(binding), answerKey, kdfKey };
        },
      };
    },
  };
}

/**
 * Router: opens a v2 request (see {@link requestOpenerV2}). Returns the plaintext (the caller zeroes
 * it), the key to seal the answer with, and `K` as HKDF key material for a streamed answer's keys.
 */
export async function openRequestV2(
  pkg: unknown,
  privateKey: PrivateKeys,
  binding: RequestBinding,
): Promise<{
  /** The request's payload: the caller zeroes it. */
  plaintext: Uint8Array<ArrayBuffer>;
  /** The key to seal the answer with. */
  answerKey: AesKey;
  /** `K` as HKDF key material, for a streamed answer's keys. */
  kdfKey: HkdfKey;
}> {
  const opened = await openWith(requestOpenerV2(privateKey, binding), pkg);
  return { ...opened, answerKey: await opened.answerKey };
}

/**
 * `K` unwrapped, and the keys made of it: the request's, the answer's (derived while the request is
 * opened), and `K` as HKDF key material. `K` is zeroed at once.
 */
async function requestKeysV2(wrapped: string, privateKey: PrivateKeys, binding: RequestBinding): Promise<{ openKey: AesKey; answerKey: Promise<AesKey>; kdfKey: HkdfKey }> {
  const sealed = decodeBase64(wrapped) as Bytes;
  const k = await withAnyKey(privateKey, (key) => rsaDecryptKey(sealed, key));
  let kdfKey: HkdfKey;
  let openKey: AesKey;
  try {
    [openKey, kdfKey] = await Promise.all([importAesKey(k, 'decrypt'), importHkdfKey(k)]);
  } finally {
    k.fill(0);
  }
  // Derived when an answer or an error is sealed: a streamed answer never needs it.
  const answerKey = lazyPromise(() => deriveAesKey(kdfKey, answerKeyInfo(binding.payloadId), 'encrypt'));
  return { openKey, answerKey, kdfKey };
}

/** Router: the answer to the request it opened for `payloadId`, ready to be sealed with `answerKey`. */
export function answerSealingV2(answerKey: AesKey, payloadId: string, extra?: { processed_at?: number }): Sealing {
  return {
    fields: { version: PROTOCOL_V2_VERSION, algorithm: V2_ANSWER_ALGORITHM, payload_algorithm: PAYLOAD_ALGORITHM, ...extra },
    params: { key: answerKey, nonce: newNonce(), aad: answerAad(payloadId) },
  };
}

/**
 * Router: an error for the request it opened for `payloadId`, ready to be sealed with `answerKey` as
 * a v2 answer package, under the error's own associated data ({@link errorAad}).
 */
export function errorSealingV2(answerKey: AesKey, payloadId: string): Sealing {
  const sealing = answerSealingV2(answerKey, payloadId);
  return { fields: sealing.fields, params: { ...sealing.params, aad: errorAad(payloadId) } };
}

/**
 * Client: opens the sealed error of a v2 error response to the request sealed for `payloadId`, with
 * that request's answer key. Anything else (a forgery, another request's error, the answer passed off
 * as an error) is a SecurityError. Returns the plaintext, which the caller zeroes.
 */
export async function openErrorV2(pkg: unknown, answerKey: AesKey, payloadId: string): Promise<Uint8Array<ArrayBuffer>> {
  return (await openWith(answerOpenerV2(answerKey, payloadId, errorAad(payloadId)), pkg)).plaintext;
}

/** Router: seals the answer to the request it opened for `payloadId`. The caller zeroes `plaintext`. */
export async function sealAnswerV2(plaintext: Bytes, answerKey: AesKey, payloadId: string, extra?: { processed_at?: number }): Promise<AnswerPackage> {
  return (await sealWith(answerSealingV2(answerKey, payloadId, extra), plaintext)) as AnswerPackage;
}
