/**
 * How one request is protected, per wire version: the headers the version adds, how the request's
 * package is sealed, and how its answer (and, in v2, an error sealed for it) opens. The client
 * chooses the version (keys/protocol-choice.ts) and then only composes these.
 */
import { HEADERS, type ProtocolVersion } from '../protocol/constants.js';
import { v1Opener, v1SealingForKey, type PackageKeyV1, type PackageOpener, type Sealing } from '../protocol/package.js';
import { answerOpenerV2, requestSealingForKeyV2, type RequestBinding, type RequestKeyV2 } from '../protocol/v2.js';
import type { ClientKeyPair } from '../keys/client-keys.js';
import type { HkdfKey } from '../crypto/hkdf.js';
import type { APIError } from '../errors.js';
import type { Exchange } from '../transport/exchange.js';
import { sealedError } from './sealed-error.js';

export interface Protection {
  version: ProtocolVersion;
  /** Headers of this version (v1: X-Public-Key). */
  headers: Record<string, string>;
  /** How the request's package is sealed: used once. */
  sealing: Sealing;
  /** How its answer opens. */
  opener: PackageOpener;
  /** v2: the error the router sealed for this request into a non-200 response, if it holds one. */
  sealedError?(response: Exchange): Promise<APIError | undefined>;
  /** v2: the request's `K` as HKDF key material, from which a streamed answer's keys are derived. */
  kdfKey?: HkdfKey;
}

/**
 * v1: a fresh AES key wrapped to the router's key (made ahead, client/request-keys.ts); the answer is
 * sealed to the client's pair, whose public key travels in X-Public-Key.
 */
export function v1Protection(packageKey: PackageKeyV1, keys: ClientKeyPair): Protection {
  return { version: 1, headers: { [HEADERS.publicKey]: keys.publicKeyHeader }, sealing: v1SealingForKey(packageKey), opener: v1Opener(keys.privateKey) };
}

/**
 * v2: a fresh `K` (made ahead, client/request-keys.ts: its raw bytes already zeroed) seals the request
 * bound to its payload id and tier (exactly the headers sent). Only the keys made of it outlive the
 * sealing (the answer key, and `K` as HKDF key material inside Web Crypto for a streamed answer), and
 * only until this request's answer (or sealed error, or stream) is done with.
 */
export function v2Protection(requestKey: RequestKeyV2, binding: RequestBinding): Protection {
  const { sealing, answerKey, kdfKey } = requestSealingForKeyV2(requestKey, binding);
  return {
    version: 2,
    headers: {},
    sealing,
    opener: answerOpenerV2(answerKey, binding.payloadId),
    sealedError: (response) => sealedError(response, answerKey, binding.payloadId),
    kdfKey,
  };
}
