import { describe, expect, it } from 'vitest';
import { MAX_SEALED_MESSAGE_CHARS } from '../../src/protocol/constants.js';
import { detailFromBody, sanitizeDetail } from '../../src/transport/detail.js';

describe('sanitizeDetail', () => {
  it('keeps ordinary text', () => {
    expect(sanitizeDetail('Model not allowed for tier "high"')).toBe('Model not allowed for tier "high"');
  });

  it('never passes control characters, escape sequences or NULs', () => {
    const hostile = 'ok\x1b[2J\x1b[31mred\x1b]0;pwned title\x07\x00nul\r\nnext\u202etxt.exe\u0085\x9b31m';
    const clean = sanitizeDetail(hostile)!;
    expect(clean).toBe('okrednul nexttxt.exe31m');
    expect(clean).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  });

  it('shows at most 100 printable characters, without splitting a surrogate pair', () => {
    const shown = sanitizeDetail('😀'.repeat(500))!;
    expect(Array.from(shown)).toHaveLength(100);
    expect(shown.endsWith('…')).toBe(true);
    expect(shown).not.toMatch(/[\uD800-\uDFFF](?![\uDC00-\uDFFF])/u);
  });

  it('shows up to the length asked for (a sealed message: MAX_SEALED_MESSAGE_CHARS), sanitized the same', () => {
    const long = `\x1b[31m${'a'.repeat(2500)}`;
    expect(sanitizeDetail(long, MAX_SEALED_MESSAGE_CHARS)).toBe(`${'a'.repeat(MAX_SEALED_MESSAGE_CHARS - 1)}…`);
    expect(sanitizeDetail('b'.repeat(MAX_SEALED_MESSAGE_CHARS), MAX_SEALED_MESSAGE_CHARS)).toHaveLength(MAX_SEALED_MESSAGE_CHARS);
  });

  it('reads detail from JSON bodies and from plain text', () => {
    expect(detailFromBody('{"detail":"bad\\u001bpackage"}')).toBe('badpackage');
    expect(detailFromBody('<html>502 Bad Gateway</html>')).toBe('<html>502 Bad Gateway</html>');
    expect(detailFromBody('{"detail":{"msg":"x"}}')).toBe('{"msg":"x"}');
    expect(detailFromBody('')).toBeUndefined();
  });
});
