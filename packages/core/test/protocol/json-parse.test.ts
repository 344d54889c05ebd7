/** parseJsonBytes: exactly JSON.parse(decode(bytes)), refusals included, long strings decoded once. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJsonBytes } from '../../src/protocol/json-parse.js';
import { LONG_STRING_BYTES } from '../../src/sizes.js';
import { encoder, expectSameParse, plain, stringify, value, viaBytes } from '../helpers/json.js';

describe('parseJsonBytes', () => {
  it('gives exactly JSON.parse(decode(bytes)) for what JSON.stringify writes (property)', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encoder.encode(JSON.stringify(v));
        expect(viaBytes(bytes, true)).toEqual(plain(bytes, true));
      }),
      { numRuns: 150 },
    );
  });

  it('agrees with the plain way on damaged JSON: same value or same refusal (property)', () => {
    const damage = fc.constantFrom(0x00, 0x0a, 0x1f, 0x22, 0x5c, 0x75, 0x80, 0xc3, 0xed, 0xef, 0xff, 0x7b, 0x7d, 0x2c, 0x3a, 0x20);
    fc.assert(
      fc.property(value, fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), damage), { minLength: 1, maxLength: 4 }), (v, hits) => {
        const bytes = encoder.encode(JSON.stringify(v));
        for (const [where, byte] of hits) bytes[Math.min(bytes.length - 1, Math.floor(where * bytes.length))] = byte;
        expectSameParse(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    ['a duplicate key that drops the long string', (s: string) => `{"a":"${s}","a":1}`],
    ['a duplicate key that keeps it', (s: string) => `{"a":1,"a":"${s}"}`],
    ['a long key', (s: string) => `{"${s}":1}`],
    ['a byte order mark first', (s: string) => `\ufeff{"a":"${s}"}`],
    ['U+FEFF opening a long string', (s: string) => `{"a":"\ufeff${s}"}`],
    ['a lone surrogate escape', (s: string) => `["${s}\\ud800"]`],
    ['a surrogate pair escape', (s: string) => `["${s}\\ud83d\\ude00\\u00e9\\u20AC"]`],
    ['an invalid escape', (s: string) => `["${s}\\x"]`],
    ['a short \\u escape', (s: string) => `["${s}\\u12"]`],
    ['a raw newline', (s: string) => `["${s}\n"]`],
    ['an unterminated string', (s: string) => `["${s}`],
    ['__proto__ as the key', (s: string) => `{"__proto__":"${s}"}`],
    ['two long strings in an array', (s: string) => `["${s}",1,"${s}x"]`],
    ['trailing garbage', (s: string) => `{"a":"${s}"} x`],
  ])('agrees with the plain way: %s', (_what, make) => {
    expectSameParse(encoder.encode(make('z'.repeat(LONG_STRING_BYTES))));
  });

  it('agrees on invalid UTF-8 inside and beside a long string', () => {
    const s = encoder.encode(`{"a":"${'q'.repeat(LONG_STRING_BYTES)}","b":"x"}`);
    for (const at of [3, 7, 100, s.length - 10, s.length - 4]) {
      for (const bad of [[0xc3], [0xe2, 0x82], [0xff], [0xed, 0xa0, 0x80]]) {
        const bytes = new Uint8Array(s.length + bad.length);
        bytes.set(s.subarray(0, at));
        bytes.set(bad, at);
        bytes.set(s.subarray(at), at + bad.length);
        expectSameParse(bytes);
      }
    }
  });

  it.each([
    ['ASCII with escapes of ASCII', `line one\\n\\"quoted\\" \\u0041\\/ `],
    ['ASCII with an escape of a non-ASCII letter', 'Gr\\u00fc\\u00dfe '],
    ['ASCII with an escape of a pair', 'smile \\ud83d\\ude00 '],
    ['raw non-ASCII letters', 'Grüße, 37 °C '],
    ['DEL, the highest ASCII byte', 'del \u007f '],
  ])('decodes a long literal of %s as the plain way does', (_what, unit) => {
    const bytes = encoder.encode(`{"content":"${unit.repeat(Math.ceil(LONG_STRING_BYTES / unit.length) + 1)}","n":1}`);
    const expected = JSON.parse(new TextDecoder().decode(bytes));
    expect(parseJsonBytes(bytes.slice(), { fatal: true })).toEqual(expected);
    expect(parseJsonBytes(bytes.slice(), { fatal: false })).toEqual(expected);
  });

  it('only reads the bytes: escaped and plain long strings alike', () => {
    const bytes = encoder.encode(JSON.stringify({ a: 'line\n"q" ü '.repeat(LONG_STRING_BYTES), b: 'plain '.repeat(LONG_STRING_BYTES) }));
    const before = bytes.slice();
    parseJsonBytes(bytes, { fatal: true });
    expect(bytes).toEqual(before);
  });

  it('uses the parse function given, on the skeleton', () => {
    const bytes = encoder.encode(`{"deep":[[["${'w'.repeat(LONG_STRING_BYTES)}"]]]}`);
    const seen: number[] = [];
    const v = parseJsonBytes(bytes, { fatal: true, parse: (t) => (seen.push(t.length), JSON.parse(t)) }) as { deep: string[][][] };
    expect(v.deep[0]![0]![0]).toBe('w'.repeat(LONG_STRING_BYTES));
    expect(seen[0]).toBeLessThan(200);
    expect(() => parseJsonBytes(bytes, { fatal: true, parse: () => { throw new RangeError('too deep'); } })).toThrow('too deep');
  });
});

