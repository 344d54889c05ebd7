/**
 * LineDecoder on its own: line ends as server-sent events define them, whatever the network cut,
 * and a large chunk decoded a slice at a time, as its lines are asked for.
 */
import { describe, expect, it } from 'vitest';
import { SecurityError } from '../../../src/errors.js';
import { LINE_SLICE_BYTES, LineDecoder } from '../../../src/protocol/stream/lines.js';

const bytes = (text: string) => new TextEncoder().encode(text);

/** Every line of `body` fed in pieces of `size` bytes, taken with next() after each piece. */
function linesOf(body: Uint8Array, size: number): string[] {
  const decoder = new LineDecoder();
  const lines: string[] = [];
  for (let at = 0; at < body.length; at += size) {
    decoder.feed(body.subarray(at, at + size));
    for (let line = decoder.next(); line !== undefined; line = decoder.next()) lines.push(line);
  }
  return lines;
}

describe('LineDecoder', () => {
  it('ends a line at LF, CRLF or CR, and a CRLF split between two chunks is one line end', () => {
    expect(new LineDecoder().push(bytes('a\nb\r\nc\rd\n'))).toEqual(['a', 'b', 'c', 'd']);
    const split = new LineDecoder();
    expect(split.push(bytes('a\r'))).toEqual(['a']);
    expect(split.push(bytes('\nb\n'))).toEqual(['b']);
  });

  it('gives the same lines however the body is cut: whole, in slices, a byte at a time, across characters of several bytes', () => {
    // Lines long and short, multi-byte characters, CRLFs, so that slice and chunk edges fall everywhere.
    const text = Array.from({ length: 400 }, (_, i) => `data: ${'é€😀x'.repeat(i % 37)}${i}${i % 3 ? '\r\n' : '\n'}`).join('');
    const body = bytes(text);
    expect(body.length).toBeGreaterThan(4 * LINE_SLICE_BYTES);
    const expected = text.split(/\r\n|\n/).slice(0, -1);
    for (const size of [body.length, LINE_SLICE_BYTES + 1, 1000, 7, 1]) expect(linesOf(body, size)).toEqual(expected);
  });

  it('gives the same lines when they end with LF alone, as nearly every stream does (found without the regular expression)', () => {
    const text = Array.from({ length: 400 }, (_, i) => `data: ${'é€😀x'.repeat(i % 37)}${i}\n${i % 5 ? '' : '\n'}`).join('');
    const body = bytes(text);
    const expected = text.split('\n').slice(0, -1);
    for (const size of [body.length, LINE_SLICE_BYTES + 1, 1000, 7, 1]) expect(linesOf(body, size)).toEqual(expected);
  });

  it("leaves no line in the engine's last regular-expression match (RegExp.input), where it stayed reachable, once found with it (CR line ends), or refused", () => {
    const lastMatched = () => String((RegExp as unknown as { input: string }).input);
    const decoder = new LineDecoder();
    expect(decoder.push(bytes('data: {"content":"PATIENT-7f3a9c"}\r\n\r\n'))).toEqual(['data: {"content":"PATIENT-7f3a9c"}', '']);
    expect(lastMatched()).not.toContain('PATIENT');
    const small = new LineDecoder(8);
    expect(() => small.push(bytes('PATIENT-7f3a9c\r\n'))).toThrow(SecurityError);
    expect(lastMatched()).not.toContain('PATIENT');
  });

  it('refuses a line over its limit whether it comes whole or in parts, and takes one at the limit', () => {
    for (const end of ['\n', '\r\n']) {
      const whole = new LineDecoder(100);
      expect(whole.push(bytes(`${'x'.repeat(100)}${end}`))).toEqual(['x'.repeat(100)]);
      expect(() => whole.push(bytes(`${'x'.repeat(101)}${end}`))).toThrow(SecurityError);
      const parts = new LineDecoder(100);
      expect(parts.push(bytes('x'.repeat(60)))).toEqual([]);
      expect(parts.push(bytes(`${'x'.repeat(40)}${end}`))).toEqual(['x'.repeat(100)]);
      expect(parts.push(bytes('x'.repeat(60)))).toEqual([]);
      expect(() => parts.push(bytes(`${'x'.repeat(41)}${end}`))).toThrow(/a line over 100 characters/);
    }
  });

  it('decodes a large chunk a slice at a time, as its lines are taken: what comes later in it is not read yet', () => {
    const decoder = new LineDecoder(100);
    // The first slice holds whole lines only; a line too long to hold comes in the next.
    const lines = (LINE_SLICE_BYTES - 'first\n'.length) / 'y\n'.length;
    decoder.feed(bytes(`first\n${'y\n'.repeat(lines)}${'x'.repeat(200)}\n`));
    expect(decoder.next()).toBe('first');
    for (let i = 0; i < lines; i++) expect(decoder.next()).toBe('y');
    expect(() => decoder.next()).toThrow(SecurityError);
  });

  it('takes a chunk only once the lines of the last one are taken', () => {
    const decoder = new LineDecoder();
    decoder.feed(bytes('a\nb\n'));
    expect(decoder.next()).toBe('a');
    expect(() => decoder.feed(bytes('c\n'))).toThrow(/before the lines of the last one were taken/);
    expect(decoder.next()).toBe('b');
    expect(decoder.next()).toBeUndefined();
    decoder.feed(bytes('c\n'));
    expect(decoder.next()).toBe('c');
  });

  it('drops a byte order mark at the start of the stream only, and gives back an unfinished last line at the end', () => {
    const decoder = new LineDecoder();
    expect(decoder.push(bytes('\uFEFFa\n\uFEFFb\nrest'))).toEqual(['a', '\uFEFFb']);
    expect(decoder.end()).toBe('rest');
  });
});
