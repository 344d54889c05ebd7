import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { secretPiece, stringsMadeDuring } from '@nomyo/test-support/secrets';
import { derToPem, derToPemBytes, pemToDer } from '../../src/crypto/pem.js';
import { SecurityError } from '../../src/errors.js';
import { generateClientKeyPair } from '../../src/keys/client-keys.js';
import { loadKeyFiles, saveKeyFiles } from '../../src/keys/files/key-files.js';
import { KEYFILES_DIR, withTempDir } from '../helpers/keyfiles.js';

const text = new TextDecoder();
const bytes = (s: string) => new TextEncoder().encode(s);

describe('PEM as bytes', () => {
  it.each(['plain.pem', 'public.pem', 'python-cryptography.pem', 'openssl-pbkdf2-sha256-600k.pem'])('%s: the same DER from its bytes as from its text, with LF or CRLF lines', (name) => {
    const file = readFileSync(join(KEYFILES_DIR, name), 'utf8');
    const label = file.includes('ENCRYPTED') ? 'ENCRYPTED PRIVATE KEY' : file.includes('PUBLIC') ? 'PUBLIC KEY' : 'PRIVATE KEY';
    const der = pemToDer(file, label);
    expect(pemToDer(bytes(file), label)).toEqual(der);
    expect(pemToDer(bytes(file.replaceAll('\n', '\r\n')), label)).toEqual(der);
    // Written back as other tools write it: lines of 64 characters, LF.
    expect(derToPem(der, label)).toBe(file);
    expect(derToPemBytes(der, label)).toEqual(bytes(file));
  });

  it('refuses what the text form refuses: no block, no END line, bad base64', () => {
    const good = readFileSync(join(KEYFILES_DIR, 'public.pem'), 'utf8');
    const cases: Array<[string, string]> = [
      [good.replace('BEGIN', 'BEGUN'), 'not a PEM PUBLIC KEY'],
      [good.replace('-----END PUBLIC KEY-----', ''), 'not a PEM PUBLIC KEY'],
      [good.replace(/\n[A-Za-z]/, '\n!'), 'not a PEM PUBLIC KEY: its base64 is invalid'],
    ];
    for (const [bad, message] of cases) {
      expect(() => pemToDer(bad, 'PUBLIC KEY')).toThrow(new SecurityError(message));
      expect(() => pemToDer(bytes(bad), 'PUBLIC KEY')).toThrow(new SecurityError(message));
    }
  });

  it('a key file stored unencrypted is read and written without its key becoming a string', () =>
    withTempDir(async (dir) => {
      const path = join(KEYFILES_DIR, 'plain.pem');
      const needle = secretPiece(readFileSync(path));
      const read = await stringsMadeDuring(() => loadKeyFiles(path));
      expect(read.length).toBeGreaterThan(0); // the watch sees strings (the public key's PEM, paths)
      expect(read.filter((s) => s.includes(needle))).toEqual([]);

      const pair = await generateClientKeyPair(2048, { extractable: true });
      const written = await stringsMadeDuring(() => saveKeyFiles(dir, pair));
      const saved = readFileSync(join(dir, 'private_key.pem'));
      expect(text.decode(saved)).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      const savedNeedle = secretPiece(saved);
      expect(written.filter((s) => s.includes(savedNeedle))).toEqual([]);
    }));
});
