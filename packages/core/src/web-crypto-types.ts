/**
 * Web Crypto's type names, for a TypeScript project without lib "DOM" (Node.js with @types/node
 * alone, which has them only as `webcrypto.CryptoKey`, …): declared empty here, they merge with
 * DOM's own where it is loaded, and stand in where it is not, so this package's types compile
 * either way. (As @smithy/types does for `Blob` and `ReadableStream`.) Each entry point imports it.
 */
declare global {
  interface CryptoKey {}
  interface CryptoKeyPair {
    privateKey: CryptoKey;
    publicKey: CryptoKey;
  }
  interface RsaHashedImportParams {}
  interface SubtleCrypto {}
}

export {};
