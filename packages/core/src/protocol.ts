/**
 * `@nomyo/core/protocol`: the wire format alone (constants, package seal/open, strict base64,
 * key import), for routers and tools that speak protocol v1. No I/O.
 */
export * from './protocol/constants.js';
export { sealPackage, openPackage, parsePackage, checkPackage, serializePackage, type EncryptedPackage } from './protocol/package.js';
export { checkChatCompletion, type ChatCompletion } from './protocol/completion.js';
export { encodeBase64, decodeBase64 } from './protocol/base64.js';
export { importRsaPublicKey, importRsaPrivateKey, generateRsaKeyPair, checkRsaKey } from './crypto/rsa.js';
export { pemToDer, derToPem } from './crypto/pem.js';
export { spkiFingerprint, fingerprintBase64 } from './crypto/fingerprint.js';
export { parseServerKey } from './keys/server-key.js';
export { sanitizeDetail } from './transport/detail.js';
