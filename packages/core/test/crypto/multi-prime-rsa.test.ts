/**
 * Multi-prime client keys: in-memory 4096-bit pairs of four 1024-bit primes, checked by OpenSSL
 * (its key check, its public key, its OAEP), and the cases that must stay two-prime.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecureCompletionClient } from '../../src/index.js';
import { generateMultiPrimeDer, MULTI_PRIME_COUNT, type RandomPrime } from '../../src/crypto/multi-prime-rsa.js';
import { RSA_OAEP } from '../../src/crypto/rsa.js';
import { subtle } from '../../src/crypto/subtle.js';
import { randomPrime } from '../../src/crypto/primes/node.js';
import { multiPrimeKeyPair } from '../../src/keys/client-keys.js';
import { loadKeyFiles } from '../../src/keys/files/key-files.js';
import { hasOpenssl, openssl, withTempDir } from '../helpers/keyfiles.js';

/** The Node prime source the client itself uses (OpenSSL's generator). */
const opensslPrime: RandomPrime = randomPrime!;

/** Odd numbers of `bits` bits with the top two bits set: the shape of a prime, but almost never one. */
const composite: RandomPrime = async (bits) =>
  BigInt('0x' + randomBytes(bits / 8).toString('hex')) | (3n << BigInt(bits - 2)) | 1n;

const router = 'https://router.invalid';

/** The key size Python's `cryptography` (what the nomyo Python client uses) reads from a PEM file, "refused ..."; null where it is not installed. */
function pythonLoads(path: string): string | null {
  const script = 'import sys\nfrom cryptography.hazmat.primitives.serialization import load_pem_private_key as load\n' +
    'try:\n  print(load(open(sys.argv[1], "rb").read(), None).key_size)\nexcept ValueError as e:\n  print("refused", e)';
  const r = spawnSync('python3', ['-c', script, path]);
  return r.status === 0 ? r.stdout.toString().trim() : null;
}

describe.skipIf(!hasOpenssl)('multi-prime client keys', () => {
  it('a default 4096-bit pair is four primes, not extractable, and opens what OpenSSL seals to its public key', () =>
    withTempDir(async (dir) => {
      const client = new SecureCompletionClient({ routerUrl: router });
      const pair = await client.keyPair();
      expect([pair.bits, pair.primes, pair.privateKey.extractable]).toEqual([4096, 4, false]);
      await expect(subtle().exportKey('pkcs8', pair.privateKey)).rejects.toThrow();

      writeFileSync(join(dir, 'pub.pem'), pair.publicKeyPem);
      const secret = randomBytes(32);
      writeFileSync(join(dir, 'secret'), secret);
      const sealed = openssl(['pkeyutl', '-encrypt', '-pubin', '-inkey', join(dir, 'pub.pem'), '-in', join(dir, 'secret'),
        '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256']);
      expect(sealed.status, sealed.stderr).toBe(0);
      const opened = await subtle().decrypt({ name: 'RSA-OAEP' }, pair.privateKey, new Uint8Array(sealed.stdout));
      expect(Buffer.from(opened).equals(secret)).toBe(true);
      await client.dispose();
    }));

  it('the key is what OpenSSL calls a valid 4096-bit, 4-prime key, with the public key OpenSSL derives from it', () =>
    withTempDir(async (dir) => {
      const { pkcs8, spki } = await generateMultiPrimeDer(opensslPrime);
      writeFileSync(join(dir, 'key.der'), pkcs8);
      const check = openssl(['pkey', '-inform', 'DER', '-in', join(dir, 'key.der'), '-check', '-text', '-noout']);
      expect(check.status, check.stderr).toBe(0);
      expect(check.stdout.toString()).toContain('Private-Key: (4096 bit, 4 primes)');
      expect(check.stdout.toString()).toContain('Key is valid');
      const pub = openssl(['pkey', '-inform', 'DER', '-in', join(dir, 'key.der'), '-pubout', '-outform', 'DER']);
      expect(Buffer.from(pub.stdout).equals(Buffer.from(spki))).toBe(true);
      // And Web Crypto takes it: RSA-OAEP-SHA256 both ways.
      const priv = await subtle().importKey('pkcs8', pkcs8, RSA_OAEP, false, ['decrypt']);
      const pubKey = await subtle().importKey('spki', spki, RSA_OAEP, false, ['encrypt']);
      const probe = randomBytes(32);
      expect(Buffer.from(await subtle().decrypt({ name: 'RSA-OAEP' }, priv, await subtle().encrypt({ name: 'RSA-OAEP' }, pubKey, probe))).equals(probe)).toBe(true);
    }));

  it('draws the primes again when a set does not fit, and gives up on a generator that never fits', async () => {
    // Four primes whose product has exactly 4096 bits (about 1 set in 7 falls short: drawn again here).
    let good: bigint[];
    do good = await Promise.all([1, 2, 3, 4].map(() => opensslPrime(1024)));
    while (good.reduce((a, b) => a * b) >> 4095n !== 1n);
    let calls = 0;
    // First set repeats a prime (refused), the second is four distinct primes.
    const repeatOnce: RandomPrime = async () => (calls++ < 4 ? good[0]! : good[(calls - 1) % 4]!);
    const { pkcs8 } = await generateMultiPrimeDer(repeatOnce);
    expect(calls).toBe(8);
    expect(pkcs8.length).toBeGreaterThan(2000);
    await expect(generateMultiPrimeDer(async () => good[0]!)).rejects.toThrow(/no usable set of primes/);
  });

  it('a key whose "primes" are not prime is never used', async () => {
    expect(await multiPrimeKeyPair(composite)).toBeUndefined();
    expect(await multiPrimeKeyPair(() => Promise.reject(new Error('no entropy')))).toBeUndefined();
    expect((await multiPrimeKeyPair(opensslPrime))?.primes).toBe(MULTI_PRIME_COUNT);
  });

  it('multiPrimeKeys: false and 2048-bit keys are two-prime', async () => {
    for (const options of [{ multiPrimeKeys: false }, { keySize: 2048 }]) {
      const client = new SecureCompletionClient({ routerUrl: router, ...options });
      expect((await client.keyPair()).primes).toBe(2);
      await client.dispose();
    }
  });

  it('keys written to files are two-prime; in-memory rotations are four-prime', () =>
    withTempDir(async (dir) => {
      const client = new SecureCompletionClient({ routerUrl: router });
      expect((await client.generateKeys()).primes).toBe(4);
      const saved = await client.generateKeys({ saveToFile: true, keyDir: join(dir, 'keys') });
      expect(saved.primes).toBe(2);
      const text = openssl(['pkey', '-in', join(dir, 'keys', 'private_key.pem'), '-text', '-noout']);
      expect(text.stdout.toString()).toContain('(4096 bit, 2 primes)');
      // Why files must stay two-prime: recent pyca/cryptography refuses multi-prime keys.
      const python = pythonLoads(join(dir, 'keys', 'private_key.pem'));
      if (python !== null) expect(python).toBe('4096');
      await client.dispose();
    }));

  it('loads a multi-prime key file written by OpenSSL and says so', () =>
    withTempDir(async (dir) => {
      mkdirSync(join(dir, 'k'));
      const key = join(dir, 'k', 'private_key.pem');
      const gen = openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096', '-pkeyopt', 'rsa_keygen_primes:4', '-out', key]);
      expect(gen.status, gen.stderr).toBe(0);
      const pair = await loadKeyFiles(key);
      expect([pair.bits, pair.primes]).toEqual([4096, 4]);
      const pub = openssl(['pkey', '-in', key, '-pubout']);
      expect(pair.publicKeyPem.trim()).toBe(pub.stdout.toString().trim());
      expect(readFileSync(key, 'utf8')).toContain('BEGIN PRIVATE KEY');
    }));
});
