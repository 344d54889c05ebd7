/** `#primes` outside Node.js: no prime generator, so keys are Web Crypto's own two-prime ones. */
import type { RandomPrime } from '../multi-prime-rsa.js';

export const randomPrime: RandomPrime | undefined = undefined;
