import { describe, expect, it } from 'vitest';
import { decodeBase64, decodedLength, encodeBase64 } from '../src/protocol/base64.js';
import { SecurityError } from '../src/errors.js';

describe('strict base64', () => {
  it('round-trips every length and matches Node', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const text = encodeBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(decodeBase64(text)).toEqual(bytes);
    }
  });

  it.each([
    ['no padding', 'QUJD' + 'QQ'],
    ['base64url alphabet', 'ab-_'],
    ['whitespace', 'QUJD\nQUJD'],
    ['padding in the middle', 'QQ==QUJD'],
    ['three pad characters', 'Q==='],
    ['non-canonical pad bits', 'QR=='],
    ['non-canonical pad bits, one pad', 'QUF='],
    ['stray character', 'QUJ*'],
  ])('refuses %s', (_what, text) => {
    expect(() => decodeBase64(text)).toThrow(SecurityError);
  });

  it('computes decoded length without decoding', () => {
    expect(decodedLength('')).toBe(0);
    expect(decodedLength('QQ==')).toBe(1);
    expect(decodedLength('QUI=')).toBe(2);
    expect(decodedLength('QUJD')).toBe(3);
  });
});

describe('strict base64: characters a lenient decoder would take', () => {
  it.each([
    ['a character above U+00FF whose low byte is a base64 letter', 'QU\u0141D'],
    ['Latin-1 letters', 'QUJ\u00c4'],
    ['a NUL', 'Q\u0000JD'],
    ['a space in place of a letter', 'QU D'],
    ['base64url characters', 'QU-_'],
  ])('refuses %s', (_what, text) => {
    expect(() => decodeBase64(text)).toThrow(SecurityError);
  });
});
