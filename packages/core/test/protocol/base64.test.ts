import { describe, expect, it } from 'vitest';
import { decodeBase64, decodedLength, encodeBase64 } from '../../src/protocol/base64.js';
import { SecurityError } from '../../src/errors.js';
import { INVALID_BASE64, LENIENT_DECODER_TRAPS } from '../helpers/base64-cases.js';

describe('strict base64', () => {
  it('round-trips every length and matches Node', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const text = encodeBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(decodeBase64(text)).toEqual(bytes);
    }
  });

  it.each(INVALID_BASE64)('refuses %s', (_what, text) => {
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
  it.each(LENIENT_DECODER_TRAPS)('refuses %s', (_what, text) => {
    expect(() => decodeBase64(text)).toThrow(SecurityError);
  });
});
