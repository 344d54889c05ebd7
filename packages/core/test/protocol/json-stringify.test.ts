/** stringifyJsonBytes and jsonBytes: exactly the bytes of TextEncoder(JSON.stringify(value)), long strings written straight in. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonBytes, stringifyJsonBytes } from '../../src/protocol/json-stringify.js';
import { utf8LengthPortable } from '../../src/protocol/json-strings.js';
import { LONG_STRING_BYTES } from '../../src/sizes.js';
import { wellFormedPortable } from '../../src/protocol/json-escapes.js';
import { allocator, encoder, stringify, tooLarge, value } from '../helpers/json.js';

describe('stringifyJsonBytes', () => {
  it('writes exactly the bytes of TextEncoder(JSON.stringify(value)) (property)', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(Buffer.from(stringify(v)!)).toEqual(Buffer.from(encoder.encode(JSON.stringify(v))));
      }),
      { numRuns: 60 },
    );
  });

  it('keeps surrogate pairs whole across slices and escapes lone halves as JSON.stringify does', () => {
    // Slices are 32 Ki characters: a pair at every position around the first boundary.
    for (let at = 32 * 1024 - 3; at < 32 * 1024 + 3; at++) {
      const s = 'a'.repeat(at) + '😀' + 'b'.repeat(LONG_STRING_BYTES) + '\ud800' + 'c'.repeat(32 * 1024 - 1) + '\ude00' + '"'.repeat(40_000);
      expect(Buffer.from(stringify({ s })!).toString()).toBe(JSON.stringify({ s }));
    }
  });

  it('writes each 32 Ki-character slice as it is or escaped, whatever the slices before it held', () => {
    // Every sequence of three slices of these kinds, after an escaped one and before a clean one:
    // nothing to escape, one escape at a slice's first or last character, escapes throughout,
    // multi-byte text, a surrogate pair (which the regex asked after an escaped slice takes for an
    // escape: JSON.stringify then writes the pair as it is).
    const SLICE = 32 * 1024;
    const kinds = [
      'a'.repeat(SLICE),
      '"' + 'a'.repeat(SLICE - 1),
      'a'.repeat(SLICE - 1) + '\n',
      'x\ty"z\\'.repeat(SLICE / 8),
      'ü€你'.repeat(SLICE / 4) + 'abcd',
      'a'.repeat(SLICE / 2 - 1) + '😀' + 'a'.repeat(SLICE / 2 - 1),
    ];
    for (let n = 0; n < kinds.length ** 3; n++) {
      const order = [n % 6, Math.floor(n / 6) % 6, Math.floor(n / 36) % 6];
      const s = [kinds[1]!, ...order.map((k) => kinds[k]!), kinds[0]!].join('');
      expect(Buffer.from(stringify({ s })!).toString()).toBe(JSON.stringify({ s }));
    }
  });

  it('escapes every byte JSON.stringify escapes, wherever it falls in a word of the buffer', () => {
    // The scan reads four bytes at a time from an aligned start: each escapable character at each
    // position in a word, after a head of each length, beside multi-byte characters.
    const escapable = [...Array.from({ length: 32 }, (_, c) => String.fromCharCode(c)), '"', '\\'];
    for (let head = 0; head < 4; head++) {
      for (const c of escapable) {
        const s = 'é'.repeat(3) + 'a'.repeat(LONG_STRING_BYTES) + [0, 1, 2, 3, 4, 5].map((k) => 'b'.repeat(k) + c).join('') + '€' + c;
        const v = ['x'.repeat(head), s];
        expect(Buffer.from(stringify(v)!).toString()).toBe(JSON.stringify(v));
      }
    }
  });

  it('takes U+FFFD for what it is, and a lone surrogate the slow way (which escapes it), with isWellFormed and without', () => {
    const cases = ['\ufffd'.repeat(LONG_STRING_BYTES), 'a'.repeat(LONG_STRING_BYTES) + '\ud800"\ufffd', '\udc00' + 'b\n'.repeat(LONG_STRING_BYTES), '你好，世界（一）'.repeat(LONG_STRING_BYTES), 'é'.repeat(LONG_STRING_BYTES) + '\udfff'];
    const native = Object.getOwnPropertyDescriptor(String.prototype, 'isWellFormed')!;
    for (const without of [false, true]) {
      if (without) delete (String.prototype as { isWellFormed?: unknown }).isWellFormed; // as in Safari < 16.4, Firefox < 119
      try {
        for (const s of cases) expect(Buffer.from(stringify({ s })!).toString()).toBe(JSON.stringify({ s }));
      } finally {
        Object.defineProperty(String.prototype, 'isWellFormed', native);
      }
    }
  });

  it('finds lone surrogates without isWellFormed as it does with it (property)', () => {
    const unit = fc.oneof(fc.constantFrom('a', '\ud800', '\udbff', '\udc00', '\udfff', '😀', '\ufffd'), fc.integer({ min: 0xd7f0, max: 0xe010 }).map((n) => String.fromCharCode(n)));
    fc.assert(fc.property(fc.array(unit, { maxLength: 12 }), (units) => {
      const t = units.join('');
      expect(wellFormedPortable(t)).toBe((t as string & { isWellFormed(): boolean }).isWellFormed());
    }), { numRuns: 2000 });
  });

  it('grows the buffer when escapes and multi-byte characters pass the estimate, and releases the outgrown one', () => {
    const a = allocator();
    const s = '\u0001'.repeat(LONG_STRING_BYTES) + '€'.repeat(LONG_STRING_BYTES);
    const out = stringifyJsonBytes([s], { into: a.into, maxBytes: 1 << 24, tooLarge })!;
    expect(new TextDecoder().decode(out.bytes)).toBe(JSON.stringify([s]));
    expect(a.sizes.length).toBeGreaterThan(1);
    expect(a.released.length).toBe(a.sizes.length - 1);
    expect(a.released.every((b) => b.every((x) => x === 0))).toBe(true);
  });

  it('stops past maxBytes, releasing what it wrote', () => {
    const a = allocator();
    const s = 'x'.repeat(LONG_STRING_BYTES * 2);
    const exact = encoder.encode(JSON.stringify({ s })).length;
    expect(stringifyJsonBytes({ s }, { into: a.into, maxBytes: exact, tooLarge })?.bytes.length).toBe(exact);
    expect(() => stringifyJsonBytes({ s }, { into: a.into, maxBytes: exact - 1, tooLarge })).toThrow('too large');
    // Escapes push it over: found while writing, and what was written is released.
    const escaped = '\n'.repeat(LONG_STRING_BYTES);
    const before = a.released.length;
    expect(() => stringifyJsonBytes({ escaped }, { into: a.into, maxBytes: LONG_STRING_BYTES + 20, tooLarge })).toThrow('too large');
    expect(a.released.length).toBe(before + 1);
    expect(a.released.at(-1)!.every((x) => x === 0)).toBe(true);
  });

  it('refuses a value nested past maxDepth before writing anything; long strings and brackets in strings do not count', () => {
    const a = allocator();
    const tooDeep = () => new Error('too deep');
    const nested = (depth: number) => ({ s: '['.repeat(LONG_STRING_BYTES), t: '{{{', x: JSON.parse('['.repeat(depth - 1) + ']'.repeat(depth - 1)) as unknown });
    const maxDepth = { limit: 64, error: tooDeep };
    expect(() => stringifyJsonBytes(nested(65), { into: a.into, maxBytes: 1e9, tooLarge, maxDepth })).toThrow('too deep');
    expect(a.sizes).toEqual([]);
    const out = stringifyJsonBytes(nested(64), { into: a.into, maxBytes: 1e9, tooLarge, maxDepth })!;
    expect(Buffer.from(out.bytes).toString()).toBe(JSON.stringify(nested(64)));
  });

  it('writes JSON without long strings into a buffer of exactly its size', () => {
    const a = allocator();
    const v = { model: 'm', messages: [{ role: 'user', content: 'héllo 😀 "x"' }] };
    const out = stringifyJsonBytes(v, { into: a.into, maxBytes: 1000, tooLarge })!;
    expect(a.sizes).toEqual([encoder.encode(JSON.stringify(v)).length]);
    expect(out.bytes.length).toBe(a.sizes[0]);
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (t) => utf8LengthPortable(t) === encoder.encode(t).length));
  });

  it('throws what JSON.stringify throws, and gives undefined where it does', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => stringify(cyclic)).toThrow(TypeError);
    expect(() => stringify({ n: 1n })).toThrow(TypeError);
    expect(stringify(undefined)).toBeUndefined();
    // toJSON and the rest of JSON.stringify's rules still apply around long strings.
    const s = 'y'.repeat(LONG_STRING_BYTES);
    const v = { d: new Date(0), t: { toJSON: () => s }, u: undefined, f: () => 1, a: [undefined, s] };
    expect(Buffer.from(stringify(v)!).toString()).toBe(JSON.stringify(v));
  });
});

describe('jsonBytes', () => {
  it('gives exactly the bytes of JSON.stringify, short or long, in a buffer of their size', () => {
    for (const value of [{ a: 1 }, { text: 'ü "q"\n👋'.repeat(LONG_STRING_BYTES) }, ['x'.repeat(LONG_STRING_BYTES * 3)]]) {
      const bytes = jsonBytes(value);
      expect(bytes).toEqual(encoder.encode(JSON.stringify(value)));
      expect(bytes.length).toBe(encoder.encode(JSON.stringify(value)).length);
    }
  });
});

