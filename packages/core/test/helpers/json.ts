/** Shared by the JSON-as-bytes tests: a plain stringify, the plain parse to compare with, and fast-check values with long strings. */
import fc from 'fast-check';
import { expect } from 'vitest';
import { heapBytes, type ByteSource, type OwnedBytes } from '../../src/memory/owned-bytes.js';
import { parseJsonBytes } from '../../src/protocol/json-parse.js';
import { stringifyJsonBytes } from '../../src/protocol/json-stringify.js';
import { LONG_STRING_BYTES } from '../../src/sizes.js';

export const encoder = new TextEncoder();

/** Plain allocation that records what is given back (zeroed, as a secure pool would) and the sizes taken. */
export function allocator(): { into: ByteSource; released: Uint8Array[]; sizes: number[] } {
  const released: Uint8Array[] = [];
  const sizes: number[] = [];
  const into: ByteSource = {
    secure: true,
    take(n) {
      sizes.push(n);
      const taken: OwnedBytes = heapBytes.take(n);
      return { ...taken, release: () => (taken.release(), released.push(taken.bytes)) };
    },
  };
  return { into, released, sizes };
}

export const tooLarge = () => new RangeError('too large');

export function stringify(value: unknown, maxBytes = 64 * 1024 * 1024): Uint8Array | undefined {
  return stringifyJsonBytes(value, { into: allocator().into, maxBytes, tooLarge })?.bytes;
}

/** What the plain way gives: the value, or the class of the error. */
export function plain(bytes: Uint8Array, fatal: boolean): unknown {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal }).decode(bytes)) };
  } catch (err) {
    return { error: (err as Error).constructor.name };
  }
}

export function viaBytes(bytes: Uint8Array, fatal: boolean): unknown {
  try {
    return { value: parseJsonBytes(bytes.slice(), { fatal }) };
  } catch (err) {
    return { error: (err as Error).constructor.name };
  }
}

export function expectSameParse(bytes: Uint8Array): void {
  for (const fatal of [true, false]) expect(viaBytes(bytes, fatal)).toEqual(plain(bytes, fatal));
}

// Pieces of long strings: everything JSON escapes, multi-byte characters, surrogate pairs and lone halves.
export const piece = fc.oneof(
  { weight: 8, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.constantFrom('"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u2028', '\ufeff') },
  { weight: 2, arbitrary: fc.constantFrom('é', '€', '😀', '𝄞', '\ufffd', '\ud800', '\udfff', '\ud83d', 'x\ud83d', '\ude00') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
);

/** A string of about `min` characters or more from the pieces, with a random one at slice boundaries. */
export const longString = fc.tuple(fc.array(piece, { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 12 })).map(([pieces, extra]) => {
  let s = pieces.join('');
  while (s.length < LONG_STRING_BYTES + extra * 4096) s += pieces.join('') + 'abc';
  return s;
});

export const shortJson = fc.jsonValue({ maxDepth: 2 });

export const value = fc.oneof(
  longString,
  fc.record({ model: fc.string(), messages: fc.array(fc.record({ role: fc.constantFrom('user', 'assistant'), content: longString }), { maxLength: 3 }) }),
  fc.tuple(shortJson, longString, shortJson, fc.array(longString, { maxLength: 2 })),
  fc.dictionary(fc.string(), fc.oneof(longString, shortJson), { maxKeys: 4 }),
);

