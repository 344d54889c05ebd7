/**
 * The client's own RSA key pair (v1 only): made (multi-prime where the runtime allows), checked and
 * described. A request takes a snapshot of one (`ClientKeyPair`) and opens its answer with it;
 * key-holder.ts hands them out, one change at a time.
 */
import { derToPem } from '../crypto/pem.js';
import { spkiFingerprint } from '../crypto/fingerprint.js';
import { MULTI_PRIME_COUNT, MULTI_PRIME_MODULUS_BITS, generateMultiPrimeDer, type RandomPrime } from '../crypto/multi-prime-rsa.js';
import { checkRsaKey, generateRsaKeyPair, importRsaPrivateKey, importRsaPublicKey, modulusBits, rsaRoundTrips } from '../crypto/rsa.js';
import { subtle } from '../crypto/subtle.js';
import { inNode } from '../env.js';

/** The client's v1 key pair, as one request uses it. */
export interface ClientKeyPair {
  /** RSA-OAEP-SHA256, non-extractable: opens this client's v1 answers. */
  readonly privateKey: CryptoKey;
  /** Its public key, which v1 answers are sealed to. */
  readonly publicKey: CryptoKey;
  /** SPKI PEM, as sent in X-Public-Key. */
  readonly publicKeyPem: string;
  /** The X-Public-Key header value (percent-encoded PEM), computed once per key. */
  readonly publicKeyHeader: string;
  /** Hex SHA-256 of the SPKI DER. */
  readonly fingerprint: string;
  /** The modulus size: 4096, 3072 or 2048. */
  readonly bits: number;
  /** Primes of the modulus: 2, or 4 for a multi-prime in-memory key (see `multiPrimeKeys`). */
  readonly primes: number;
}

/** Wraps two CryptoKeys into a ClientKeyPair after checking them. */
export async function toClientKeyPair(privateKey: CryptoKey, publicKey: CryptoKey, primes: number): Promise<ClientKeyPair> {
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
    primes,
  });
}

export interface GenerateOptions {
  /** For a pair that is to be written to a file; such a pair is always two-prime, which every tool reads. */
  extractable?: boolean;
  /** A 4096-bit pair that stays in memory is made of four primes where the runtime can (crypto/multi-prime-rsa.ts). */
  multiPrime?: boolean;
}

/** A fresh pair: multi-prime when asked for and possible, else Web Crypto's own. */
export async function generateClientKeyPair(bits: number, options: GenerateOptions = {}): Promise<ClientKeyPair> {
  const extractable = options.extractable ?? false;
  if (options.multiPrime && !extractable && bits === MULTI_PRIME_MODULUS_BITS) {
    const randomPrime = await runtimePrimes();
    const pair = randomPrime && (await multiPrimeKeyPair(randomPrime));
    if (pair) return pair;
  }
  const pair = await generateRsaKeyPair(bits, extractable);
  return toClientKeyPair(pair.privateKey, pair.publicKey, 2);
}

/**
 * A non-extractable four-prime pair from `randomPrime`'s primes, or undefined where that fails, or
 * Web Crypto refuses such a key (BoringSSL, a FIPS provider) or does not open what it seals.
 */
export async function multiPrimeKeyPair(randomPrime: RandomPrime): Promise<ClientKeyPair | undefined> {
  const der = await generateMultiPrimeDer(randomPrime).catch(() => undefined);
  if (der === undefined) return undefined;
  try {
    const [privateKey, publicKey] = await Promise.all([importRsaPrivateKey(der.pkcs8, false), importRsaPublicKey(der.spki)]);
    if (!(await rsaRoundTrips(publicKey, privateKey))) return undefined;
    return await toClientKeyPair(privateKey, publicKey, MULTI_PRIME_COUNT);
  } catch {
    return undefined;
  } finally {
    der.pkcs8.fill(0);
  }
}

let primeSource: Promise<RandomPrime | undefined> | undefined;

/** OpenSSL's prime generator through node:crypto (`#primes`); none outside Node.js. */
function runtimePrimes(): Promise<RandomPrime | undefined> {
  primeSource ??= inNode() ? import('#primes').then((m) => m.randomPrime, () => undefined) : Promise.resolve(undefined);
  return primeSource;
}

