import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findLongStrings, jsonBytes, LONG_STRING, parseJsonBytes, stringifyJsonBytes, utf8LengthPortable } from '../src/protocol/json-bytes.js';
import { byteKinds, CONTROL_BYTE, hasEscapable, NON_ASCII_BYTE, wellFormedPortable } from '../src/protocol/json-escapes.js';

const encoder = new TextEncoder();

/** Plain allocation that records what is given back, as a secure pool would zero it. */
function allocator() {
  const released: Uint8Array[] = [];
  return {
    released,
    alloc: (n: number) => new Uint8Array(n),
    release: (b: Uint8Array) => {
      b.fill(0);
      released.push(b);
    },
  };
}

const tooLarge = () => new RangeError('too large');

function stringify(value: unknown, maxBytes = 64 * 1024 * 1024): Uint8Array | undefined {
  const out = stringifyJsonBytes(value, { ...allocator(), maxBytes, tooLarge });
  return out && out.buffer.subarray(0, out.length);
}

/** What the plain way gives: the value, or the class of the error. */
function plain(bytes: Uint8Array, fatal: boolean): unknown {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal }).decode(bytes)) };
  } catch (err) {
    return { error: (err as Error).constructor.name };
  }
}

function viaBytes(bytes: Uint8Array, fatal: boolean): unknown {
  try {
    return { value: parseJsonBytes(bytes.slice(), { fatal }) };
  } catch (err) {
    return { error: (err as Error).constructor.name };
  }
}

function expectSameParse(bytes: Uint8Array): void {
  for (const fatal of [true, false]) expect(viaBytes(bytes, fatal)).toEqual(plain(bytes, fatal));
}

// Pieces of long strings: everything JSON escapes, multi-byte characters, surrogate pairs and lone halves.
const piece = fc.oneof(
  { weight: 8, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.constantFrom('"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u2028', '\ufeff') },
  { weight: 2, arbitrary: fc.constantFrom('é', '€', '😀', '𝄞', '\ufffd', '\ud800', '\udfff', '\ud83d', 'x\ud83d', '\ude00') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
);

/** A string of about `min` characters or more from the pieces, with a random one at slice boundaries. */
const longString = fc.tuple(fc.array(piece, { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 12 })).map(([pieces, extra]) => {
  let s = pieces.join('');
  while (s.length < LONG_STRING + extra * 4096) s += pieces.join('') + 'abc';
  return s;
});

const shortJson = fc.jsonValue({ maxDepth: 2 });

const value = fc.oneof(
  longString,
  fc.record({ model: fc.string(), messages: fc.array(fc.record({ role: fc.constantFrom('user', 'assistant'), content: longString }), { maxLength: 3 }) }),
  fc.tuple(shortJson, longString, shortJson, fc.array(longString, { maxLength: 2 })),
  fc.dictionary(fc.string(), fc.oneof(longString, shortJson), { maxKeys: 4 }),
);

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
      const s = 'a'.repeat(at) + '😀' + 'b'.repeat(LONG_STRING) + '\ud800' + 'c'.repeat(32 * 1024 - 1) + '\ude00' + '"'.repeat(40_000);
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
        const s = 'é'.repeat(3) + 'a'.repeat(LONG_STRING) + [0, 1, 2, 3, 4, 5].map((k) => 'b'.repeat(k) + c).join('') + '€' + c;
        const v = ['x'.repeat(head), s];
        expect(Buffer.from(stringify(v)!).toString()).toBe(JSON.stringify(v));
      }
    }
  });

  it('takes U+FFFD for what it is, and a lone surrogate the slow way (which escapes it), with isWellFormed and without', () => {
    const cases = ['\ufffd'.repeat(LONG_STRING), 'a'.repeat(LONG_STRING) + '\ud800"\ufffd', '\udc00' + 'b\n'.repeat(LONG_STRING), '你好，世界（一）'.repeat(LONG_STRING), 'é'.repeat(LONG_STRING) + '\udfff'];
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
    const s = '\u0001'.repeat(LONG_STRING) + '€'.repeat(LONG_STRING);
    const out = stringifyJsonBytes([s], { ...a, maxBytes: 1 << 24, tooLarge })!;
    expect(new TextDecoder().decode(out.buffer.subarray(0, out.length))).toBe(JSON.stringify([s]));
    expect(a.released.length).toBeGreaterThan(0);
    expect(a.released.every((b) => b.every((x) => x === 0))).toBe(true);
  });

  it('stops past maxBytes, releasing what it wrote', () => {
    const a = allocator();
    const s = 'x'.repeat(LONG_STRING * 2);
    const exact = encoder.encode(JSON.stringify({ s })).length;
    expect(stringifyJsonBytes({ s }, { ...a, maxBytes: exact, tooLarge })?.length).toBe(exact);
    expect(() => stringifyJsonBytes({ s }, { ...a, maxBytes: exact - 1, tooLarge })).toThrow('too large');
    // Escapes push it over: found while writing.
    const escaped = '\n'.repeat(LONG_STRING);
    expect(() => stringifyJsonBytes({ escaped }, { ...a, maxBytes: LONG_STRING + 20, tooLarge })).toThrow('too large');
    expect(a.released.at(-1)!.every((x) => x === 0)).toBe(true);
  });

  it('writes JSON without long strings into a buffer of exactly its size', () => {
    const a = allocator();
    const sizes: number[] = [];
    const v = { model: 'm', messages: [{ role: 'user', content: 'héllo 😀 "x"' }] };
    const out = stringifyJsonBytes(v, { ...a, alloc: (n) => (sizes.push(n), new Uint8Array(n)), maxBytes: 1000, tooLarge })!;
    expect(sizes).toEqual([encoder.encode(JSON.stringify(v)).length]);
    expect(out.length).toBe(sizes[0]);
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (t) => utf8LengthPortable(t) === encoder.encode(t).length));
  });

  it('throws what JSON.stringify throws, and gives undefined where it does', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => stringify(cyclic)).toThrow(TypeError);
    expect(() => stringify({ n: 1n })).toThrow(TypeError);
    expect(stringify(undefined)).toBeUndefined();
    // toJSON and the rest of JSON.stringify's rules still apply around long strings.
    const s = 'y'.repeat(LONG_STRING);
    const v = { d: new Date(0), t: { toJSON: () => s }, u: undefined, f: () => 1, a: [undefined, s] };
    expect(Buffer.from(stringify(v)!).toString()).toBe(JSON.stringify(v));
  });
});

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
    expectSameParse(encoder.encode(make('z'.repeat(LONG_STRING))));
  });

  it('agrees on invalid UTF-8 inside and beside a long string', () => {
    const s = encoder.encode(`{"a":"${'q'.repeat(LONG_STRING)}","b":"x"}`);
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
    const bytes = encoder.encode(`{"content":"${unit.repeat(Math.ceil(LONG_STRING / unit.length) + 1)}","n":1}`);
    const expected = JSON.parse(new TextDecoder().decode(bytes));
    expect(parseJsonBytes(bytes.slice(), { fatal: true })).toEqual(expected);
    expect(parseJsonBytes(bytes.slice(), { fatal: false })).toEqual(expected);
  });

  it('only reads the bytes: escaped and plain long strings alike', () => {
    const bytes = encoder.encode(JSON.stringify({ a: 'line\n"q" ü '.repeat(LONG_STRING), b: 'plain '.repeat(LONG_STRING) }));
    const before = bytes.slice();
    parseJsonBytes(bytes, { fatal: true });
    expect(bytes).toEqual(before);
  });

  it('uses the parse function given, on the skeleton', () => {
    const bytes = encoder.encode(`{"deep":[[["${'w'.repeat(LONG_STRING)}"]]]}`);
    const seen: number[] = [];
    const v = parseJsonBytes(bytes, { fatal: true, parse: (t) => (seen.push(t.length), JSON.parse(t)) }) as { deep: string[][][] };
    expect(v.deep[0]![0]![0]).toBe('w'.repeat(LONG_STRING));
    expect(seen[0]).toBeLessThan(200);
    expect(() => parseJsonBytes(bytes, { fatal: true, parse: () => { throw new RangeError('too deep'); } })).toThrow('too deep');
  });
});

describe('jsonBytes', () => {
  it('gives exactly the bytes of JSON.stringify, short or long, in a buffer of their size', () => {
    for (const value of [{ a: 1 }, { text: 'ü "q"\n👋'.repeat(LONG_STRING) }, ['x'.repeat(LONG_STRING * 3)]]) {
      const bytes = jsonBytes(value);
      expect(bytes).toEqual(encoder.encode(JSON.stringify(value)));
      expect(bytes.length).toBe(encoder.encode(JSON.stringify(value)).length);
    }
  });
});

describe('findLongStrings', () => {
  it('finds the long literals JSON.parse finds, past short ones with escaped quotes and backslash runs', () => {
    const long = 'k'.repeat(LONG_STRING);
    const text = `{"a\\"":"${long}","b\\\\":"x\\\\\\"y","c":"${long}é","d":"short"}`;
    const found = findLongStrings(encoder.encode(text), LONG_STRING)!;
    const parsed = JSON.parse(text) as Record<string, string>;
    expect(found.map((l) => new TextDecoder().decode(encoder.encode(text).subarray(l.start, l.end)))).toEqual([parsed['a"'], parsed.c]);
  });

  it('gives up on a long literal with escapes, the moment it is known to be long', () => {
    expect(findLongStrings(encoder.encode(`["${'k'.repeat(LONG_STRING)}\\n"]`), LONG_STRING)).toBeUndefined();
    expect(findLongStrings(encoder.encode(`["\\"${'k'.repeat(LONG_STRING)}"]`), LONG_STRING)).toBeUndefined();
    // Unterminated, with escaped quotes past its first LONG_STRING bytes: no need to read on.
    expect(findLongStrings(encoder.encode(`["${'k\\"'.repeat(LONG_STRING)}`), LONG_STRING)).toBeUndefined();
  });

  it('agrees with a byte-by-byte scan on any mix of quotes, backslashes and text (property)', () => {
    const QUOTE = 0x22;
    const BACKSLASH = 0x5c;
    /** The literals as JSON.parse would start and end them, one byte at a time. */
    const scan = (bytes: Uint8Array, min: number) => {
      const out: Array<{ start: number; end: number; escaped: boolean }> = [];
      let opened = 0;
      let unterminated = false;
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== QUOTE) continue;
        opened++;
        const open = i++;
        let escaped = false;
        while (i < bytes.length && bytes[i] !== QUOTE) {
          if (bytes[i] === BACKSLASH) (escaped = true), (i += 2);
          else i++;
        }
        if (i >= bytes.length) {
          unterminated = true;
          break;
        }
        if (i - open - 1 >= min) out.push({ start: open + 1, end: i, escaped });
      }
      return { out, opened, unterminated };
    };
    const byte = fc.constantFrom(QUOTE, QUOTE, BACKSLASH, BACKSLASH, 0x61, 0x61, 0x61, 0x20, 0xc3, 0xa9);
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 300 }), fc.integer({ min: 0, max: 6 }), (values, min) => {
        const bytes = Uint8Array.from(values);
        const found = findLongStrings(bytes, min);
        const ref = scan(bytes, min);
        if (found) {
          expect(ref.out.some((l) => l.escaped)).toBe(false);
          expect(found).toEqual(ref.out.map(({ start, end }) => ({ start, end })));
        } else {
          // Given up on: a long literal with escapes (or an unterminated one that may be), or too many literals.
          expect(ref.out.some((l) => l.escaped) || ref.unterminated || ref.opened > 64).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('gives up on input made of many short strings', () => {
    expect(findLongStrings(encoder.encode(JSON.stringify(Array.from({ length: 5000 }, () => 'ab'))), 10)).toBeUndefined();
  });
});

describe('byteKinds and hasEscapable', () => {
  it('see every byte of a range exactly once whatever its alignment: its head, its aligned words, its tail', () => {
    // Every byte value at every place of ranges of 0 to 40 bytes (two passes of the word loops and
    // the bytes around them), from every start in a word and a view at every offset in its buffer.
    // The bytes outside the range hold, turn about, a byte both look for (a newline) and a
    // non-ASCII one, so a read one byte too far, either side, at any alignment, is seen.
    const escapable = (c: number) => c < 0x20 || c === 0x22 || c === 0x5c;
    const kindOf = (c: number) => (c < 0x20 ? CONTROL_BYTE : c >= 0x80 ? NON_ASCII_BYTE : 0);
    let checked = 0;
    const wrong: string[] = [];
    for (const viewOffset of [0, 1, 2, 3]) {
      const bytes = new Uint8Array(64).subarray(viewOffset);
      const outside = bytes.map((_, i) => (i % 2 === 0 ? 0x0a : 0xff));
      for (let start = 1; start <= 4; start++) {
        for (let length = 0; length <= 40; length++) {
          const end = start + length;
          for (let at = start - 1; at < end; at++) {
            for (let c = 0; c < 256; c++) {
              bytes.set(outside);
              bytes.fill(0x61, start, end);
              const inside = at >= start;
              if (inside) bytes[at] = c;
              if (hasEscapable(bytes, start, end) !== (inside && escapable(c)) || byteKinds(bytes, start, end) !== (inside ? kindOf(c) : 0)) {
                wrong.push(`byte ${c} at ${at} of [${start}, ${end}), view at ${viewOffset}`);
              }
              checked++;
              if (!inside) break;
            }
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(4 * 4 * (41 + 256 * 820));
  });

  it('reports both kinds together', () => {
    const bytes = encoder.encode(`${'a'.repeat(33)}\t${'b'.repeat(20)}é${'c'.repeat(7)}`);
    expect(byteKinds(bytes, 0, bytes.length)).toBe(CONTROL_BYTE | NON_ASCII_BYTE);
    expect(byteKinds(bytes, 0, 33)).toBe(0);
  });
});
