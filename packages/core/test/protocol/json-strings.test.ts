/** findLongStrings: the long literals JSON.parse would read, found on the bytes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findLongStrings } from '../../src/protocol/json-strings.js';
import { LONG_STRING_BYTES } from '../../src/sizes.js';
import { encoder, stringify } from '../helpers/json.js';

describe('findLongStrings', () => {
  it('finds the long literals JSON.parse finds, past short ones with escaped quotes and backslash runs', () => {
    const long = 'k'.repeat(LONG_STRING_BYTES);
    const text = `{"a\\"":"${long}","b\\\\":"x\\\\\\"y","c":"${long}é","d":"short"}`;
    const found = findLongStrings(encoder.encode(text), LONG_STRING_BYTES)!;
    const parsed = JSON.parse(text) as Record<string, string>;
    expect(found.map((l) => new TextDecoder().decode(encoder.encode(text).subarray(l.start, l.end)))).toEqual([parsed['a"'], parsed.c]);
  });

  it('gives up on a long literal with escapes, the moment it is known to be long', () => {
    expect(findLongStrings(encoder.encode(`["${'k'.repeat(LONG_STRING_BYTES)}\\n"]`), LONG_STRING_BYTES)).toBeUndefined();
    expect(findLongStrings(encoder.encode(`["\\"${'k'.repeat(LONG_STRING_BYTES)}"]`), LONG_STRING_BYTES)).toBeUndefined();
    // Unterminated, with escaped quotes past its first LONG_STRING_BYTES bytes: no need to read on.
    expect(findLongStrings(encoder.encode(`["${'k\\"'.repeat(LONG_STRING_BYTES)}`), LONG_STRING_BYTES)).toBeUndefined();
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

