import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DerError, DerReader, derInteger, derOctetString, derOid, derSequence, oid, oidToString, readSequence } from '../../src/crypto/der.js';
import { pemToDer, derToPem } from '../../src/crypto/pem.js';
import {
  DEFAULT_PBKDF2_ITERATIONS,
  MIN_PASSWORD_LENGTH,
  decryptPrivateKeyInfo,
  encryptPrivateKeyInfo,
  encryptPrivateKeyPem,
  readPrivateKeyPem,
} from '../../src/crypto/pkcs8-pbes2.js';
import { importRsaPrivateKey } from '../../src/crypto/rsa.js';
import { InvalidArgumentError, KeyFileError, KeyPasswordError } from '../../src/errors.js';
import { rejection } from '../helpers/rejection.js';
import {
  KEYFILE_PASSWORD,
  KEYFILES_DIR,
  OIDS,
  buildEpki,
  hasOpenssl,
  nodeEncrypt,
  openssl,
  parseEpki,
  readKeyfile,
  spkiOf,
  withTempDir,
} from '../helpers/keyfiles.js';

const WRONG = 'wrong password or corrupt key file';
const REQUIRED = 'this key file is password-protected: a password is required';
const PLAIN = pemToDer(readKeyfile('plain.pem'), 'PRIVATE KEY');
const PUBLIC = pemToDer(readKeyfile('public.pem'), 'PUBLIC KEY');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');


/** Exactly a KeyFileError, not its KeyPasswordError subclass. */
async function expectKeyFileError(p: Promise<unknown>, message?: RegExp): Promise<void> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(KeyFileError);
  expect((e as KeyFileError).code).toBe('ERR_NOMYO_KEY_FILE');
  if (message) expect(e.message).toMatch(message);
}

async function expectWrongPassword(p: Promise<unknown>): Promise<void> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(KeyPasswordError);
  expect(e.message).toBe(WRONG);
}

describe('der', () => {
  it('writes and reads back integers, long lengths and OIDs', () => {
    for (const n of [0, 1, 127, 128, 255, 256, 2048, 600_000, 2 ** 40, 2 ** 48 - 1]) {
      expect(new DerReader(derInteger(n)).integer()).toBe(n);
    }
    expect(hex(derInteger(128))).toBe('02020080');
    expect(hex(derInteger(600_000))).toBe('02030927c0');
    for (const size of [0, 127, 128, 255, 256, 70_000]) {
      const der = derOctetString(new Uint8Array(size).fill(7));
      expect(new DerReader(der).octetString().length).toBe(size);
    }
    expect(hex(derOctetString(new Uint8Array(200))).slice(0, 6)).toBe('0481c8');
    expect(hex(oid(OIDS.pbes2))).toBe('2a864886f70d01050d');
    expect(hex(oid(OIDS.aes256))).toBe('60864801650304012a');
    expect(oidToString(oid('1.3.6.1.4.1.11591.4.11'))).toBe('1.3.6.1.4.1.11591.4.11');
    expect(oidToString(oid('2.16.840.1.101.3.4.1.42'))).toBe('2.16.840.1.101.3.4.1.42');
  });

  it.each([
    ['indefinite length', '3080020100 0000'],
    ['non-minimal short length in long form', '04810100'],
    ['long length with a leading zero', '0482000100'],
    ['length of 5 bytes', '04850000000001'],
    ['truncated contents', '040500'],
    ['truncated header', '04'],
    ['empty input', ''],
    ['trailing bytes', '30030201000000'],
    ['high tag number', '1f0100'],
  ])('refuses %s', (_name, h) => {
    expect(() => readSequence(Buffer.from(h.replace(/ /g, ''), 'hex'))).toThrow(DerError);
  });

  it.each([
    ['negative', '020180'],
    ['non-minimal', '02020005'],
    ['empty', '0200'],
    ['too large', '020701000000000000'],
    ['not an integer', '040100'],
  ])('refuses a %s INTEGER', (_name, h) => {
    expect(() => new DerReader(Buffer.from(h, 'hex')).integer()).toThrow(DerError);
  });

  it('refuses a NULL with contents and a malformed OID, and reports unread data', () => {
    expect(() => new DerReader(Buffer.from('050100', 'hex')).null()).toThrow(DerError);
    expect(() => new DerReader(Buffer.from('060188', 'hex')).oid()).toThrow(DerError);
    const r = readSequence(derSequence(derInteger(1), derInteger(2)));
    r.integer();
    expect(() => r.end()).toThrow(DerError);
  });
});

describe('key files written by other tools (test-vectors/keyfiles)', () => {
  const encrypted = readdirSync(KEYFILES_DIR).filter((f) => f.endsWith('.pem') && f !== 'plain.pem' && f !== 'public.pem');

  it('has the four files the README names', () => {
    expect(encrypted.sort()).toEqual(['openssl-aes128-sha1-2048.pem', 'openssl-pbkdf2-sha256-100k.pem', 'openssl-pbkdf2-sha256-600k.pem', 'python-cryptography.pem']);
  });

  it('plain.pem needs no password and matches public.pem', async () => {
    const der = await readPrivateKeyPem(readKeyfile('plain.pem'));
    expect(hex(der)).toBe(hex(PLAIN));
    expect(hex(await spkiOf(der))).toBe(hex(PUBLIC));
  });

  it.each(encrypted)('%s opens with the password to the same key', async (file) => {
    const der = await readPrivateKeyPem(readKeyfile(file), KEYFILE_PASSWORD);
    expect(hex(der)).toBe(hex(PLAIN));
    expect(hex(await spkiOf(der))).toBe(hex(PUBLIC));
    await importRsaPrivateKey(der, false);
  });

  it.each(encrypted)('%s is refused with a wrong password', async (file) => {
    await expectWrongPassword(readPrivateKeyPem(readKeyfile(file), 'correct horse batterY'));
  });

  it('python-cryptography.pem is PBES2, PBKDF2-HMAC-SHA256 (2048 iterations, 16-byte salt), AES-256-CBC', () => {
    const f = parseEpki(pemToDer(readKeyfile('python-cryptography.pem'), 'ENCRYPTED PRIVATE KEY'));
    expect(f).toMatchObject({ iterations: 2048, prf: { oid: OIDS.sha256 }, prfParamsNull: true, cipherOid: OIDS.aes256 });
    expect(f.salt.length).toBe(16);
    expect(f.keyLength).toBeUndefined();
  });
});

describe('encryptPrivateKeyInfo / decryptPrivateKeyInfo', () => {
  it('round trips', async () => {
    const enc = await encryptPrivateKeyInfo(PLAIN, 'a long enough password', { iterations: 1000 });
    expect(hex(await decryptPrivateKeyInfo(enc, 'a long enough password'))).toBe(hex(PLAIN));
    await expectWrongPassword(decryptPrivateKeyInfo(enc, 'a long enough passworD'));
  });

  it('writes 600,000 iterations by default, a 16-byte salt and IV, the OpenSSL encoding, fresh randomness', async () => {
    expect(DEFAULT_PBKDF2_ITERATIONS).toBe(600_000);
    expect(MIN_PASSWORD_LENGTH).toBe(8);
    const a = await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD);
    const f = parseEpki(a);
    expect(f).toMatchObject({ iterations: 600_000, prf: { oid: OIDS.sha256 }, prfParamsNull: true, cipherOid: OIDS.aes256 });
    expect(f.keyLength).toBeUndefined();
    expect([f.salt.length, f.iv.length]).toEqual([16, 16]);
    expect(hex(await decryptPrivateKeyInfo(a, KEYFILE_PASSWORD))).toBe(hex(PLAIN));
    const g = parseEpki(await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 1 }));
    expect(hex(g.salt)).not.toBe(hex(f.salt));
    expect(hex(g.iv)).not.toBe(hex(f.iv));
  });

  it('refuses passwords under 8 characters (code points), bad iteration counts and non-PKCS#8 input', async () => {
    for (const pw of ['', '1234567', '🔑🔑🔑🔑']) {
      await expect(encryptPrivateKeyInfo(PLAIN, pw, { iterations: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await encryptPrivateKeyInfo(PLAIN, '12345678', { iterations: 1 });
    await encryptPrivateKeyInfo(PLAIN, '🔑'.repeat(8), { iterations: 1 });
    for (const iterations of [0, -1, 1.5, 10_000_001, Number.NaN]) {
      await expect(encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(encryptPrivateKeyInfo(new Uint8Array([1, 2, 3]), KEYFILE_PASSWORD)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('takes the password as exact UTF-8, without Unicode normalisation', async () => {
    const nfc = 'pässwörd-ñ'.normalize('NFC');
    const enc = await encryptPrivateKeyInfo(PLAIN, nfc, { iterations: 1000 });
    expect(hex(await decryptPrivateKeyInfo(enc, nfc))).toBe(hex(PLAIN));
    await expectWrongPassword(decryptPrivateKeyInfo(enc, nfc.normalize('NFD')));
    // And the bytes are UTF-8: an independent node:crypto writer agrees.
    expect(hex(await decryptPrivateKeyInfo(nodeEncrypt(PLAIN, nfc), nfc))).toBe(hex(PLAIN));
  });

  it('decrypts any password length other tools allow, but refuses an empty one', async () => {
    expect(hex(await decryptPrivateKeyInfo(nodeEncrypt(PLAIN, 'abc'), 'abc'))).toBe(hex(PLAIN));
    const e = await rejection(decryptPrivateKeyInfo(nodeEncrypt(PLAIN, 'abc'), ''));
    expect(e).toBeInstanceOf(KeyPasswordError);
    expect(e.message).toBe(REQUIRED);
  });

  it.each([
    ['PBKDF2-SHA1, prf omitted (the RFC 8018 default), AES-128', { hash: 'SHA-1', bits: 128 }],
    ['PBKDF2-SHA1, prf written explicitly', { hash: 'SHA-1', prf: 'null' }],
    ['PBKDF2-SHA256 without NULL prf parameters', { hash: 'SHA-256', prf: 'no-null' }],
    ['PBKDF2-SHA384, AES-192', { hash: 'SHA-384', bits: 192 }],
    ['PBKDF2-SHA512', { hash: 'SHA-512' }],
    ['a matching keyLength (AES-256)', { keyLength: 32 }],
    ['a matching keyLength (AES-128)', { bits: 128, keyLength: 16 }],
    ['an 8-byte salt', { saltBytes: 8 }],
    ['a 64-byte salt', { saltBytes: 64 }],
    ['a single iteration', { iterations: 1 }],
  ] as const)('reads %s', async (_name, o) => {
    expect(hex(await decryptPrivateKeyInfo(nodeEncrypt(PLAIN, KEYFILE_PASSWORD, o), KEYFILE_PASSWORD))).toBe(hex(PLAIN));
  });

  it('refuses a keyLength that does not match the cipher', async () => {
    await expectKeyFileError(decryptPrivateKeyInfo(nodeEncrypt(PLAIN, KEYFILE_PASSWORD, { keyLength: 16 }), KEYFILE_PASSWORD), /key length 16/);
  });

  it('gives one error for any tampering with ciphertext, IV or salt: no oracle', async () => {
    const good = await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 1000 });
    const f = parseEpki(good);
    const flip = (b: Uint8Array, i: number) => {
      const c = Uint8Array.from(b);
      c[i]! ^= 0x01;
      return c;
    };
    const n = f.ciphertext.length;
    // Last block and the one before it: the padding check fails. First block: the padding
    // passes and the PrivateKeyInfo outline check fails.
    for (const i of [n - 1, n - 8, n - 17, n - 20, 0, 5, 15]) {
      await expectWrongPassword(decryptPrivateKeyInfo(buildEpki({ ...f, ciphertext: flip(f.ciphertext, i) }), KEYFILE_PASSWORD));
    }
    await expectWrongPassword(decryptPrivateKeyInfo(buildEpki({ ...f, iv: flip(f.iv, 0) }), KEYFILE_PASSWORD));
    await expectWrongPassword(decryptPrivateKeyInfo(buildEpki({ ...f, salt: flip(f.salt, 3) }), KEYFILE_PASSWORD));
    // A ciphertext that decrypts with valid padding but is not a PrivateKeyInfo: the same error.
    const notAKey = nodeEncrypt(new TextEncoder().encode('definitely not a key'), KEYFILE_PASSWORD);
    await expectWrongPassword(decryptPrivateKeyInfo(notAKey, KEYFILE_PASSWORD));
  });

  it('cannot see damage inside the key body: PBES2 (CBC, no MAC) has no integrity check', async () => {
    // Documented limitation, not a wish: the damaged key only fails when it is imported or used.
    const f = parseEpki(await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 10 }));
    const c = Uint8Array.from(f.ciphertext);
    c[c.length >> 1]! ^= 0x01;
    const out = await decryptPrivateKeyInfo(buildEpki({ ...f, ciphertext: c }), KEYFILE_PASSWORD);
    expect(hex(out)).not.toBe(hex(PLAIN));
    expect(out.length).toBe(PLAIN.length);
  });

  it('refuses truncated, extended and garbage DER with KeyFileError, never anything else', async () => {
    const good = await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 10 });
    for (let len = 0; len < good.length; len++) await expectKeyFileError(decryptPrivateKeyInfo(good.subarray(0, len), KEYFILE_PASSWORD));
    await expectKeyFileError(decryptPrivateKeyInfo(Uint8Array.from([...good, 0]), KEYFILE_PASSWORD), /unexpected data/);
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
    for (let i = 0; i < 200; i++) {
      const junk = Uint8Array.from({ length: 1 + (i % 60) }, rnd);
      if (i % 2) junk[0] = 0x30; // looks like a SEQUENCE, to get past the first byte
      await expectKeyFileError(decryptPrivateKeyInfo(junk, KEYFILE_PASSWORD));
    }
    // Every single-byte corruption of the header is some KeyFileError (a wrong-password one
    // included), except IV bit flips that CBC carries into the first plaintext block and that keep
    // the PrivateKeyInfo outline (they change the key algorithm OID): those yield different bytes.
    const headerEnd = good.length - parseEpki(good).ciphertext.length;
    const ivStart = headerEnd - 4 - 16; // the encryptedData header (04 82 xx xx) follows the IV
    expect(hex(good.subarray(ivStart, ivStart + 16))).toBe(hex(parseEpki(good).iv));
    for (let i = 0; i < headerEnd; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = Uint8Array.from(good);
        bad[i]! ^= mask;
        const result = await decryptPrivateKeyInfo(bad, KEYFILE_PASSWORD).catch((e: unknown) => e as Error);
        if (result instanceof Uint8Array) {
          expect(i >= ivStart && i < ivStart + 16, `byte ${i} ^ ${mask} opened`).toBe(true);
          expect(hex(result)).not.toBe(hex(PLAIN));
        } else {
          expect(result, `byte ${i} ^ ${mask}: ${result.message}`).toBeInstanceOf(KeyFileError);
        }
      }
    }
  });

  it('refuses huge or zero iteration counts before running PBKDF2', async () => {
    const f = parseEpki(await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 1 }));
    const started = performance.now();
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, iterations: 10_000_001 }), KEYFILE_PASSWORD), /iteration count 10000001 is above/);
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, iterations: 2 ** 40 }), KEYFILE_PASSWORD), /iteration count/);
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, iterations: Uint8Array.of(0x7f, 1, 2, 3, 4, 5, 6, 7) }), KEYFILE_PASSWORD), /iteration count/);
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, iterations: 0 }), KEYFILE_PASSWORD), /iteration count/);
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, iterations: Uint8Array.of(0xff) }), KEYFILE_PASSWORD), /negative/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it.each([
    ['PBES1', { schemeOid: '1.2.840.113549.1.5.3' }, /PBES1/],
    ['PKCS#12 PBE', { schemeOid: '1.2.840.113549.1.12.1.3' }, /PKCS#12 PBE/],
    ['scrypt', { kdfOid: '1.3.6.1.4.1.11591.4.11' }, /scrypt/],
    ['HMAC-SHA224', { prf: { oid: OIDS.sha224 } }, /hmacWithSHA224/],
    ['DES-EDE3-CBC', { cipherOid: '1.2.840.113549.3.7' }, /DES-EDE3-CBC/],
    ['AES-256-GCM', { cipherOid: '2.16.840.1.101.3.4.1.46' }, /AES-256-GCM/],
    ['an unknown scheme', { schemeOid: '1.2.3.4' }, /OID 1\.2\.3\.4/],
  ] as const)('refuses %s with KeyFileError naming it', async (_name, change, message) => {
    const f = parseEpki(await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 1 }));
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, ...change }), KEYFILE_PASSWORD), message);
  });

  it('refuses a salt given as otherSource and an IV of the wrong size', async () => {
    const f = parseEpki(await encryptPrivateKeyInfo(PLAIN, KEYFILE_PASSWORD, { iterations: 1 }));
    await expectKeyFileError(decryptPrivateKeyInfo(buildEpki({ ...f, iv: f.iv.subarray(0, 8) }), KEYFILE_PASSWORD), /IV/);
    const otherSource = derSequence(derOid(oid('1.2.3')));
    const kdf = derSequence(derOid(oid(OIDS.pbkdf2)), derSequence(otherSource, derInteger(1)));
    const cipher = derSequence(derOid(oid(OIDS.aes256)), derOctetString(f.iv));
    const der = derSequence(derSequence(derOid(oid(OIDS.pbes2)), derSequence(kdf, cipher)), derOctetString(f.ciphertext));
    await expectKeyFileError(decryptPrivateKeyInfo(der, KEYFILE_PASSWORD), /salt source/);
  });
});

describe('PEM', () => {
  it('writes an ENCRYPTED PRIVATE KEY PEM that reads back', async () => {
    const pem = await encryptPrivateKeyPem(PLAIN, KEYFILE_PASSWORD, { iterations: 1000 });
    expect(pem.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----\n')).toBe(true);
    expect(hex(await readPrivateKeyPem(pem, KEYFILE_PASSWORD))).toBe(hex(PLAIN));
  });

  it('asks for a password when an encrypted file has none', async () => {
    for (const pw of [undefined, '']) {
      const e = await rejection(readPrivateKeyPem(readKeyfile('python-cryptography.pem'), pw));
      expect(e).toBeInstanceOf(KeyPasswordError);
      expect(e.message).toBe(REQUIRED);
    }
  });

  it('ignores a password for a plain key', async () => {
    expect(hex(await readPrivateKeyPem(readKeyfile('plain.pem'), 'unused password'))).toBe(hex(PLAIN));
  });

  it('refuses PKCS#1, public keys, other text and bad base64 with KeyFileError', async () => {
    const pkcs1 = derToPem(new Uint8Array([0x30, 0]), 'PUBLIC KEY').replace(/PUBLIC KEY/g, 'RSA PRIVATE KEY');
    await expectKeyFileError(readPrivateKeyPem(pkcs1, KEYFILE_PASSWORD), /openssl pkcs8 -topk8/);
    await expectKeyFileError(readPrivateKeyPem(readKeyfile('public.pem')), /found "PUBLIC KEY"/);
    await expectKeyFileError(readPrivateKeyPem('hello'), /expected a PEM/);
    const bad = readKeyfile('python-cryptography.pem').replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!');
    await expectKeyFileError(readPrivateKeyPem(bad, KEYFILE_PASSWORD), /malformed ENCRYPTED PRIVATE KEY PEM/);
    await expectKeyFileError(readPrivateKeyPem(derToPem(derSequence(derInteger(5)), 'PRIVATE KEY')), /PrivateKeyInfo/);
  });
});

describe('interop with the openssl CLI', () => {
  const plainPath = join(KEYFILES_DIR, 'plain.pem');

  it.each([
    ['ASCII password', KEYFILE_PASSWORD],
    ['non-ASCII password', 'pässwörd 🔑 ñ'],
  ])('openssl pkey opens our file (%s)', async (_name, password) => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'ours.pem');
      writeFileSync(path, await encryptPrivateKeyPem(PLAIN, password, { iterations: 2048 }));
      const r = openssl(['pkey', '-in', path, '-passin', 'env:NOMYO_TEST_PASS'], password);
      expect(r.status, r.stderr).toBe(0);
      expect(hex(pemToDer(r.stdout.toString(), 'PRIVATE KEY'))).toBe(hex(PLAIN));
      const wrong = openssl(['pkey', '-in', path, '-passin', 'env:NOMYO_TEST_PASS'], `${password}x`);
      expect(wrong.status).not.toBe(0);
    });
  });

  it('openssl also opens a file with an explicit keyLength', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'keylength.pem');
      writeFileSync(path, derToPem(nodeEncrypt(PLAIN, KEYFILE_PASSWORD, { keyLength: 32 }), 'ENCRYPTED PRIVATE KEY'));
      const r = openssl(['pkey', '-in', path, '-passin', 'env:NOMYO_TEST_PASS'], KEYFILE_PASSWORD);
      expect(r.status, r.stderr).toBe(0);
      expect(hex(pemToDer(r.stdout.toString(), 'PRIVATE KEY'))).toBe(hex(PLAIN));
    });
  });

  it.each([
    ['aes-256-cbc, hmacWithSHA256, 2048 iterations', ['-v2', 'aes-256-cbc', '-v2prf', 'hmacWithSHA256', '-iter', '2048'], KEYFILE_PASSWORD],
    ['aes-128-cbc, hmacWithSHA1 (prf omitted)', ['-v2', 'aes-128-cbc', '-v2prf', 'hmacWithSHA1'], KEYFILE_PASSWORD],
    ['aes-128-cbc, openssl default prf', ['-v2', 'aes-128-cbc'], KEYFILE_PASSWORD],
    ['aes-192-cbc, hmacWithSHA512', ['-v2', 'aes-192-cbc', '-v2prf', 'hmacWithSHA512'], KEYFILE_PASSWORD],
    ['one iteration', ['-v2', 'aes-256-cbc', '-iter', '1'], KEYFILE_PASSWORD],
    ['a non-ASCII password', ['-v2', 'aes-256-cbc'], 'pässwörd 🔑 ñ'],
  ])('we open openssl pkcs8 -topk8 %s', async (_name, args, password) => {
    const r = openssl(['pkcs8', '-topk8', '-in', plainPath, ...args, '-passout', 'env:NOMYO_TEST_PASS'], password);
    expect(r.status, r.stderr).toBe(0);
    const pem = r.stdout.toString();
    expect(hex(await readPrivateKeyPem(pem, password))).toBe(hex(PLAIN));
    await expectWrongPassword(readPrivateKeyPem(pem, `${password}x`));
  });

  it.each([
    ['scrypt', ['-scrypt'], /scrypt/],
    ['PBES1-era PKCS#12 3DES', ['-v1', 'PBE-SHA1-3DES'], /PKCS#12 PBE/],
    ['PBES2 with DES-EDE3-CBC', ['-v2', 'des3'], /DES-EDE3-CBC/],
  ])('refuses openssl %s with KeyFileError', async (_name, args, message) => {
    const r = openssl(['pkcs8', '-topk8', '-in', plainPath, ...args, '-passout', 'env:NOMYO_TEST_PASS'], KEYFILE_PASSWORD);
    expect(r.status, r.stderr).toBe(0);
    await expectKeyFileError(readPrivateKeyPem(r.stdout.toString(), KEYFILE_PASSWORD), message);
  });

  it('refuses a real PKCS#1 file with the conversion hint', async () => {
    const r = openssl(['pkey', '-in', plainPath, '-traditional']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.toString()).toContain('BEGIN RSA PRIVATE KEY');
    await expectKeyFileError(readPrivateKeyPem(r.stdout.toString()), /openssl pkcs8 -topk8/);
  });
});
