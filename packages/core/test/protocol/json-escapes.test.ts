/** byteKinds and hasEscapable: every byte of a range seen once, whatever its alignment. */
import { describe, expect, it } from 'vitest';
import { byteKinds, CONTROL_BYTE, hasEscapable, NON_ASCII_BYTE } from '../../src/protocol/json-escapes.js';
import { encoder, value } from '../helpers/json.js';

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
