/**
 * The client's own RSA key pair and the holder that hands it out.
 *
 * The holder serialises every change of key (first generation, loading, later rotation) through a
 * promise-chain mutex, so any number of concurrent first calls produce exactly one key pair.
 * Callers take a snapshot (`ClientKeyPair`) per request and open the answer with that snapshot,
 * so a key change while a request is in flight cannot break it. Rotation lives in `key-holder.ts`.
 */
import { derToPem } from '../crypto/pem.js';
import { spkiFingerprint } from '../crypto/fingerprint.js';
import { checkRsaKey, generateRsaKeyPair, modulusBits } from '../crypto/rsa.js';
import { subtle } from '../crypto/subtle.js';

export interface ClientKeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** SPKI PEM, as sent in X-Public-Key. */
  readonly publicKeyPem: string;
  /** The X-Public-Key header value (percent-encoded PEM), computed once per key. */
  readonly publicKeyHeader: string;
  /** Hex SHA-256 of the SPKI DER. */
  readonly fingerprint: string;
  readonly bits: number;
}

/** Wraps two CryptoKeys into a ClientKeyPair after checking them. */
export async function toClientKeyPair(privateKey: CryptoKey, publicKey: CryptoKey): Promise<ClientKeyPair> {
  checkRsaKey(privateKey, 'private');
  checkRsaKey(publicKey, 'public');
  const spki = new Uint8Array(await subtle().exportKey('spki', publicKey));
  const publicKeyPem = derToPem(spki, 'PUBLIC KEY');
  return Object.freeze({
    privateKey,
    publicKey,
    publicKeyPem,
    publicKeyHeader: encodeURIComponent(publicKeyPem),
    fingerprint: await spkiFingerprint(spki),
    bits: modulusBits(publicKey),
  });
}

/** A fresh pair; the private key is extractable only when it is to be written to a file. */
export async function generateClientKeyPair(bits: number, extractable = false): Promise<ClientKeyPair> {
  const pair = await generateRsaKeyPair(bits, extractable);
  return toClientKeyPair(pair.privateKey, pair.publicKey);
}

export { ClientKeyHolder, type KeyPairFactory, type PendingKeyPair, type KeyHolderOptions } from './key-holder.js';
