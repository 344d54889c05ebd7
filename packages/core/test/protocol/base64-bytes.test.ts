import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from '../../src/protocol/base64.js';
import { BASE64_PIECE_BYTES, base64Codecs, base64Length, base64SpanLength, decodeBase64Span, encodeBase64Into } from '../../src/protocol/base64-bytes.js';
import { SecurityError } from '../../src/errors.js';
import { INVALID_BASE64, LENIENT_DECODER_TRAPS } from '../helpers/base64-cases.js';

const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

/** What base64.ts makes of `text`: the bytes, or the error. */
function stringDecoder(text: string): Uint8Array | Error {
  try {
    return decodeBase64(text);
  } catch (err) {
    return err as Error;
  }
}

/** What the span decoder makes of the same characters, put inside other bytes as in a package. */
function spanDecoder(text: string): Uint8Array | Error {
  const src = latin1(`{"c":"${text}"}`);
  const start = 6;
  try {
    const out = new Uint8Array(base64SpanLength(src, start, start + text.length));
    decodeBase64Span(src, start, start + text.length, out, 0);
    return out;
  } catch (err) {
    return err as Error;
  }
}

/** The same text decoded in place: into the very bytes it is read from, as a body is opened in place. */
function inPlaceDecoder(text: string): Uint8Array | Error {
  const src = latin1(text);
  try {
    return src.slice(0, decodeBase64Span(src, 0, src.length, src, 0));
  } catch (err) {
    return err as Error;
  }
}

function expectSame(text: string): void {
  const expected = stringDecoder(text);
  for (const decode of [spanDecoder, inPlaceDecoder]) {
    const got = decode(text);
    if (expected instanceof Error) {
      expect(got).toBeInstanceOf(SecurityError);
      expect((got as Error).message).toBe(expected.message);
    } else {
      expect(got).toEqual(expected);
    }
  }
}

const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
// Mostly alphabet, with the characters a lenient decoder would take or skip.
const base64ish = fc.string({
  unit: fc.oneof(
    { weight: 20, arbitrary: fc.constantFrom(...BASE64_CHARS) },
    { weight: 1, arbitrary: fc.constantFrom('=', '-', '_', ' ', '\n', '\t', '\u0000', '\u007f', '\u0080', '\u00c1', '\u00ff', '*', '.') },
  ),
  maxLength: 64,
});

describe('base64 between byte arrays', () => {
  it('encodes exactly as base64.ts, at any offset, for every length', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const out = new Uint8Array(base64Length(n) + 3).fill(0xee);
      expect(encodeBase64Into(bytes, out, 2)).toBe(2 + base64Length(n));
      expect(new TextDecoder().decode(out.subarray(2, 2 + base64Length(n)))).toBe(encodeBase64(bytes));
      expect([out[0], out[1], out[out.length - 1]]).toEqual([0xee, 0xee, 0xee]);
    }
  });

  it('encodes long inputs across pieces, with every codec', () => {
    const big = new Uint8Array(randomBytes(3 * BASE64_PIECE_BYTES + 7));
    const expected = encodeBase64(big);
    for (const [name, codec] of Object.entries(base64Codecs)) {
      const out = new Uint8Array(base64Length(big.length));
      expect(codec.encode(big, out, 0), name).toBe(out.length);
      expect(new TextDecoder().decode(out), name).toBe(expected);
    }
  });

  it('refuses a target that is too small', () => {
    expect(() => encodeBase64Into(new Uint8Array(3), new Uint8Array(3), 0)).toThrow(RangeError);
    expect(() => decodeBase64Span(latin1('QUJD'), 0, 4, new Uint8Array(2), 0)).toThrow(RangeError);
  });

  // Bytes: the characters above U+00FF have no single-byte form.
  it.each([...INVALID_BASE64, ...LENIENT_DECODER_TRAPS.filter(([, t]) => /^[\u0000-\u00ff]*$/.test(t))])('refuses %s, as base64.ts does', (_what, text) => {
    expect(stringDecoder(text)).toBeInstanceOf(SecurityError);
    expectSame(text);
  });

  it('agrees with base64.ts on every input (property)', () => {
    fc.assert(fc.property(base64ish, (text) => expectSame(text)), { numRuns: 3000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => expectSame(encodeBase64(bytes))),
      { numRuns: 500 },
    );
  });

  it('finds a bad character anywhere in a long text, with every codec', () => {
    const bytes = new Uint8Array(randomBytes(60000));
    const good = latin1(encodeBase64(bytes).repeat(3));
    const whole = good.length - (good.length % 4);
    for (const [name, codec] of Object.entries(base64Codecs)) {
      const out = new Uint8Array(good.length);
      expect(codec.decodeQuads(good, 0, whole, out, 0), name).toBe(true);
      for (const at of [0, 1, 65535, 65536, 70001, whole - 1]) {
        for (const bad of [0x2d, 0x5f, 0x3d, 0x20, 0x0a, 0x80, 0xc1, 0xff, 0x00]) {
          const src = good.slice();
          src[at] = bad;
          expect(codec.decodeQuads(src, 0, whole, out, 0), `${name} ${bad} at ${at}`).toBe(false);
        }
      }
    }
  });

  it('decodes in place, ahead of the text it reads', () => {
    const bytes = new Uint8Array(randomBytes(200001));
    const text = encodeBase64(bytes);
    const buf = latin1(`{"ciphertext":"${text}"}`);
    const n = decodeBase64Span(buf, 15, 15 + text.length, buf, 3);
    expect(n).toBe(bytes.length);
    expect(buf.subarray(3, 3 + n)).toEqual(bytes);
  });

  it('decodes long texts in place, across the pieces Node decodes at a time', () => {
    const bytes = new Uint8Array(randomBytes(3 * BASE64_PIECE_BYTES + 2));
    const text = latin1(`{"c":"${encodeBase64(bytes)}"}`);
    const n = decodeBase64Span(text, 6, 6 + base64Length(bytes.length), text, 0);
    expect(n).toBe(bytes.length);
    expect(Buffer.from(text.subarray(0, n)).equals(Buffer.from(bytes))).toBe(true);
  });
});
