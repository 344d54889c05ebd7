/**
 * `@nomyo/core/protocol`: the wire format alone (constants, package seal/open for v1 and v2, sealed
 * errors, streamed answers, X-Nomyo-Protocol, strict base64, key import, the completion and chunk
 * checks), for routers, tools and other clients that speak the protocol (docs/protocol.md). No I/O.
 *
 * @module @nomyo/core/protocol
 */
// Web Crypto's type names for projects without lib "DOM" (a side effect of types only).
import './web-crypto-types.js';
export * from './protocol/constants.js';
export {
  sealPackage,
  openPackage,
  parsePackage,
  parseJsonPackage,
  checkPackage,
  serializePackage,
  sealWith,
  openWith,
  v1Sealing,
  v1Opener,
  type EncryptedPackage,
  type EncryptedPayload,
  type AnswerPackage,
  type PackageFields,
  type GcmParams,
  type Sealing,
  type PackageOpener,
  type CheckedPackage,
  type OpenKeys,
} from './protocol/package.js';
export {
  sealRequestV2,
  requestSealingV2,
  openRequestV2,
  requestOpenerV2,
  sealAnswerV2,
  answerSealingV2,
  answerOpenerV2,
  openAnswerV2,
  errorSealingV2,
  openErrorV2,
  errorAad,
  checkAnswerV2,
  deriveAnswerKey,
  requestAad,
  answerAad,
  type RequestBinding,
  type RequestKeys,
} from './protocol/v2.js';
export { sealedErrorBytes, parseSealedError, type SealedError } from './protocol/sealed-error.js';
export { parseProtocolHeader, formatProtocolHeader } from './protocol/versions.js';
export { isPayloadId, isSecurityTier, PAYLOAD_ID_RULE, SECURITY_TIER_RULE } from './protocol/request-headers.js';
export { checkChatCompletion, type ChatCompletion } from './protocol/completion.js';
export { encodeBase64, decodeBase64 } from './protocol/base64.js';
export { jsonNestingExceeds } from './protocol/json-depth.js';
export { importRsaPublicKey, importRsaPrivateKey, generateRsaKeyPair, checkRsaKey, type PrivateKeys } from './crypto/rsa.js';
export { pemToDer, derToPem, derToPemBytes, type PemLabel } from './crypto/pem.js';
export type { Bytes } from './crypto/subtle.js';
export type { AesKey, NodeAesKey } from './crypto/gcm/types.js';
export type { HkdfKey, NodeHkdfKey } from './crypto/hkdf.js';
export type { OwnedBytes, ByteSource, Placement } from './memory/owned-bytes.js';
export { spkiFingerprint, fingerprintBase64 } from './crypto/fingerprint.js';
export { parseServerKey } from './keys/server-key.js';
export { sanitizeDetail } from './transport/detail.js';
export { StreamOpener, type StreamStep } from './protocol/stream/open-stream.js';
export { StreamSealer } from './protocol/stream/seal-stream.js';
export { deriveStreamKeys, recordNonce, recordAad, paddedLength, sealRecord, openRecord, type StreamKeys } from './protocol/stream/records.js';
export { LineDecoder } from './protocol/stream/lines.js';
export { EventParser, formatEvent, type EventLimits, type StreamEvent } from './protocol/stream/events.js';
export { checkChatCompletionChunk, type ChatCompletionChunk } from './protocol/stream/chunk.js';
