import { MAX_DETAIL_CHARS } from '../protocol/constants.js';

// Escape sequences first (CSI, OSC, other ESC-x), so their printable tails do not survive.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
// Then every control (Cc), format (Cf: bidi overrides, zero-width), separator (Zl, Zp), surrogate and unassigned code point.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Cn}]/gu;

/**
 * At most `maxChars` ({@link MAX_DETAIL_CHARS} by default) printable characters of a router's
 * `detail`: text from the network must never reach a terminal or log raw.
 */
export function sanitizeDetail(detail: unknown, maxChars: number = MAX_DETAIL_CHARS): string | undefined {
  if (typeof detail !== 'string') return undefined;
  const clean = detail.replace(ESCAPES, '').replace(/[\t-\r]/g, ' ').replace(UNPRINTABLE, '').replace(/\s+/g, ' ').trim();
  const chars = Array.from(clean);
  const shown = chars.length > maxChars ? chars.slice(0, maxChars - 1).join('') + '…' : clean;
  return shown || undefined;
}

/** The `detail` of an error body, which may be JSON `{"detail": ...}` or not JSON at all. */
export function detailFromBody(body: string): string | undefined {
  let detail: unknown = body;
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'detail' in parsed) {
      const d = (parsed as { detail: unknown }).detail;
      detail = typeof d === 'string' ? d : JSON.stringify(d);
    }
  } catch {
    // Not JSON: show (sanitized) text.
  }
  return sanitizeDetail(detail);
}
