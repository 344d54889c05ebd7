/**
 * Multi-prime RSA keys (RFC 8017 §3.2): a 4096-bit modulus made of four 1024-bit primes.
 *
 * Why: opening an answer takes one RSA private-key operation, most of a small request's own time.
 * With the Chinese remainder theorem that is one exponentiation per prime: four 1024-bit ones
 * instead of two 2048-bit ones, each about an eighth of the work, and a pair is made faster too
 * (measured per OpenSSL version in docs/performance.md). The modulus, the public key, the packages
 * and the router's side do not change.
 *
 * Strength: the modulus is as hard for the number field sieve as any 4096-bit one; four is the most
 * primes for which finding one 1024-bit factor by ECM stays harder than that (Hinek, "On the
 * security of multi-prime RSA", 2008), and the most OpenSSL accepts at 4096 bits.
 * Limits: FIPS 186-5 allows only two primes, and BoringSSL (Chrome) and pyca/cryptography (the
 * Python client) do not load such keys. So only keys that never leave memory are made this way,
 * only where the runtime's Web Crypto accepts them, and `multiPrimeKeys: false` turns it off.
 *
 * The primes come from the runtime's own generator (OpenSSL's, through node:crypto, in `#primes`);
 * this module only does the arithmetic RFC 8017 defines on them. JavaScript BigInts cannot be
 * zeroed: the primes stay in the heap until collected, like any JS string. Every DER byte is zeroed.
 */
import { TAG_INTEGER, derEncode, derSequence } from './der.js';
import { RSA_PUBLIC_EXPONENT } from '../protocol/constants.js';
import { rsaPkcs8, rsaSpki } from './rsa-der.js';
import type { Bytes } from './subtle.js';

/** The one shape made: a 4096-bit modulus of four 1024-bit primes (the fast path of OpenSSL's 1024-bit exponentiation). */
export const MULTI_PRIME_MODULUS_BITS = 4096;
export const MULTI_PRIME_COUNT = 4;
const PRIME_BITS = MULTI_PRIME_MODULUS_BITS / MULTI_PRIME_COUNT;
/** A prime generator that keeps failing our checks is broken: give up rather than loop. */
const MAX_ATTEMPTS = 64;

/** A random prime of exactly `bits` bits (top two bits set, as OpenSSL's are). */
export type RandomPrime = (bits: number) => Promise<bigint>;

const E = bytesToBigInt(RSA_PUBLIC_EXPONENT);
const RSA_VERSION_MULTI = 1n;

/**
 * The PKCS#8 and SPKI DER of a multi-prime key from four primes made by `randomPrime`. Sets whose
 * product is not exactly 4096 bits, that repeat a prime, or where e divides some p - 1 are drawn again.
 * The PKCS#8 holds the private key: the caller zeroes it.
 */
export async function generateMultiPrimeDer(randomPrime: RandomPrime): Promise<{ pkcs8: Bytes; spki: Bytes }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    // One at a time: Node runs each search on its 4-thread pool, where four at once would hold up
    // every request's Web Crypto calls for tens of milliseconds during a background rotation.
    const primes: bigint[] = [];
    for (let i = 0; i < MULTI_PRIME_COUNT; i++) primes.push(await randomPrime(PRIME_BITS));
    if (usablePrimes(primes)) return multiPrimeDer(primes);
  }
  throw new Error('the prime generator gave no usable set of primes');
}

function usablePrimes(primes: readonly bigint[]): boolean {
  const n = primes.reduce((a, b) => a * b, 1n);
  return (
    hasBits(n, MULTI_PRIME_MODULUS_BITS) &&
    new Set(primes).size === primes.length &&
    primes.every((p) => hasBits(p, PRIME_BITS) && gcd(E, p - 1n) === 1n)
  );
}

/**
 * RFC 8017 A.1.2 RSAPrivateKey, version multi (1), in PKCS#8, and the matching SPKI.
 * d is e^-1 mod the product of all p_i - 1 (as OpenSSL's multi-prime generator has it; lcm would
 * cost more gcds on the event loop and changes no CRT exponent); each CRT exponent is d mod (p_i - 1);
 * `coefficient` is prime2^-1 mod prime1, and each later prime r_i carries (r_1 ... r_(i-1))^-1 mod r_i.
 */
function multiPrimeDer(primes: readonly bigint[]): { pkcs8: Bytes; spki: Bytes } {
  const [p1, p2, ...others] = primes;
  if (p1 === undefined || p2 === undefined || others.length === 0) throw new RangeError('a multi-prime key has at least three primes');
  const n = primes.reduce((a, b) => a * b, 1n);
  const d = modInverse(E, primes.reduce((phi, p) => phi * (p - 1n), 1n));
  // Every encoded field but n and e is secret: all of them are zeroed once the PKCS#8 is built.
  const secret: Uint8Array[] = [];
  const int = (x: bigint): Uint8Array => {
    const contents = integerContents(x);
    const tlv = derEncode(TAG_INTEGER, contents);
    secret.push(contents, tlv);
    return tlv;
  };
  try {
    let product = p1 * p2;
    const otherInfos = others.map((r) => {
      const info = derSequence(int(r), int(d % (r - 1n)), int(modInverse(product % r, r)));
      product *= r;
      secret.push(info);
      return info;
    });
    const otherPrimeInfos = derSequence(...otherInfos);
    secret.push(otherPrimeInfos);
    const rsaPrivateKey = derSequence(
      int(RSA_VERSION_MULTI), int(n), int(E), int(d),
      int(p1), int(p2), int(d % (p1 - 1n)), int(d % (p2 - 1n)), int(modInverse(p2, p1)),
      otherPrimeInfos,
    );
    secret.push(rsaPrivateKey);
    return { pkcs8: rsaPkcs8(rsaPrivateKey), spki: rsaSpki(integerContents(n), integerContents(E)) };
  } finally {
    for (const bytes of secret) bytes.fill(0);
  }
}

/** Minimal two's-complement INTEGER contents of a non-negative bigint (taken 32 bits at a time: few BigInt copies). */
function integerContents(x: bigint): Uint8Array {
  const words: number[] = [];
  for (let v = x; v > 0n; v >>= 32n) words.push(Number(BigInt.asUintN(32, v)));
  const out = new Uint8Array(words.length * 4 + 1);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(out.length - 4 * (i + 1), words[i]!);
  words.fill(0);
  // Keep one leading zero byte only where the first digit has its high bit set (else it would read as negative).
  let start = 0;
  while (start < out.length - 1 && out[start] === 0 && out[start + 1]! < 0x80) start++;
  const minimal = out.slice(start);
  out.fill(0);
  return minimal;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let x = 0n;
  for (const b of bytes) x = (x << 8n) | BigInt(b);
  return x;
}

/** True when `x` has exactly `bits` bits (its top bit is bit bits-1). */
function hasBits(x: bigint, bits: number): boolean {
  return x >> BigInt(bits - 1) === 1n;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** a^-1 mod m by the extended Euclidean algorithm; throws when there is none. */
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [((a % m) + m) % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('no modular inverse');
  return ((s0 % m) + m) % m;
}
