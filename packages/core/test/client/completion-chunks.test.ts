/** The chunks made of a whole answer: pieces, how many, and made as they are taken. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { completionChunks, pieces } from '../../src/client/completion-chunks.js';
import type { ChatCompletion } from '../../src/protocol/completion.js';

/** The split as it was first written: words (each with the whitespace after it) added while they fit. */
function greedyWords(text: string, size: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const word of text.split(/(?<=\s)/)) {
    if (current !== '' && current.length + word.length > size) {
      out.push(current);
      current = '';
    }
    current += word;
  }
  if (current !== '') out.push(current);
  return out;
}

const completion = (content: string): ChatCompletion => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1700000000,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
});

describe('pieces', () => {
  it('splits as adding whole words while they fit does, for any text and size (property)', () => {
    const char = fc.constantFrom('a', 'b', ' ', ' ', '\n', '\u00a0', '\u3000', '👋', 'ü');
    fc.assert(
      fc.property(fc.array(char, { maxLength: 200 }), fc.integer({ min: 1, max: 30 }), (chars, size) => {
        const text = chars.join('');
        expect([...pieces(text, size)]).toEqual(greedyWords(text, size));
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps short answers in pieces of about 24 characters', () => {
    const text = 'The patient reports mild headaches today. '.repeat(20);
    const all = [...pieces(text)];
    expect(all.join('')).toBe(text);
    expect(Math.max(...all.map((p) => p.length))).toBeLessThanOrEqual(24);
    expect(all.length).toBeGreaterThan(30);
  });

  it('cuts a long answer into about a thousand pieces, not one per few words', () => {
    const text = 'The patient reports mild headaches; BP 120/80. '.repeat(22000); // 1 MiB
    const all = [...pieces(text)];
    expect(all.join('')).toBe(text);
    expect(all.length).toBeGreaterThan(1000);
    expect(all.length).toBeLessThanOrEqual(1030);
  });
});
