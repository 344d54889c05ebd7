/**
 * `#primes` in Node.js: random primes from OpenSSL's generator (BN_generate_prime_ex2, through
 * node:crypto), for multi-prime keys. Other runtimes get `browser.ts`, which has none.
 */
import { generatePrime } from 'node:crypto';
import type { RandomPrime } from '../multi-prime-rsa.js';

export const randomPrime: RandomPrime | undefined = (bits) =>
  new Promise((resolve, reject) => generatePrime(bits, { bigint: true }, (err, prime) => (err ? reject(err) : resolve(prime))));
