/**
 * The client's own RSA key pair and the holder that hands it out.
 *
 * The holder serialises every change of key (first generation, loading, later rotation) through a
 * promise-chain mutex, so any number of concurrent first calls produce exactly one key pair.
 * Callers take a snapshot (`ClientKeyPair`) per request and open the answer with that snapshot,
 * so a key change while a request is in flight cannot break it.
 */
import { derToPem } from '../crypto/pem.js';
import { spkiFingerprint } from '../crypto/fingerprint.js';
import { checkRsaKey, generateRsaKeyPair, modulusBits } from '../crypto/rsa.js';
import { subtle } from '../crypto/subtle.js';
import { DisposedError } from '../errors.js';

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

/** Where a holder gets its first key pair from (generated in memory, or loaded from files). */
export type KeyPairFactory = () => Promise<ClientKeyPair>;

export class ClientKeyHolder {
  #chain: Promise<unknown> = Promise.resolve();
  #current: ClientKeyPair | undefined;
  #disposed = false;

  constructor(private readonly factory: KeyPairFactory) {}

  /** Runs `fn` alone: no other key change starts until it settles. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** The key pair to use for the next request, made (once) on first use. */
  async current(): Promise<ClientKeyPair> {
    this.#assertUsable();
    if (this.#current) return this.#current;
    return this.exclusive(async () => {
      this.#assertUsable();
      this.#current ??= await this.factory();
      return this.#current;
    });
  }

  /** The pair in use now, without creating one. */
  peek(): ClientKeyPair | undefined {
    return this.#current;
  }

  /** Replaces the pair (after loading or generating keys explicitly). */
  replace(pair: ClientKeyPair): Promise<void> {
    return this.exclusive(async () => {
      this.#assertUsable();
      this.#current = pair;
    });
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Drops the key reference; every later call fails with DisposedError. */
  dispose(): void {
    this.#disposed = true;
    this.#current = undefined;
  }

  #assertUsable(): void {
    if (this.#disposed) throw new DisposedError('this client was disposed');
  }
}
