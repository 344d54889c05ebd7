/**
 * Reading a package body: its JSON parsed with the one long string, the ciphertext, left in the bytes
 * (a stand-in in its place), so that a 13 MB base64 string is never made. Used by open.ts.
 */
import { byteKinds } from '../json-escapes.js';
import { textDecoders } from '../json-parse.js';
import { findLongStrings, standIn } from '../json-strings.js';
import { LONG_STRING_BYTES } from '../../sizes.js';

/** The ciphertext is located when its base64 is at least this long (the other fields are short). */
const MIN_LOCATED_CIPHERTEXT = 4 * 1024;

/** How a body's text is read the exact way: `parse(decode(body))`. */
export interface BodyText {
  /** Refuse bytes that are not UTF-8 (a router reading requests), or read them as U+FFFD (fetch's Response.text()). */
  fatal: boolean;
  /** JSON.parse and the errors the caller maps it to. */
  parse(text: string): unknown;
}

/** A body read: the parsed package, and where its ciphertext is when it was left out of the parse. */
export interface PackageBody {
  /** `parse(decode(body))`, except that `encrypted_payload.ciphertext` is a stand-in when `span` is set. */
  pkg: unknown;
  /** The ciphertext's base64: bytes [start, end) of the body, printable ASCII with no escapes. */
  span?: { start: number; end: number };
}

function readWhole(body: Uint8Array, text: BodyText): PackageBody {
  return { pkg: text.parse(textDecoders(text.fatal).text.decode(body)) };
}

/**
 * Reads a package body: its JSON parsed with the one long string, the ciphertext, left out (a random
 * stand-in in its place), or whole (a body shorter than a long string; no long string or more than
 * one; one with escapes, or with a byte that is not printable ASCII; one that is not
 * `encrypted_payload.ciphertext`; a skeleton that does not parse). Throws what
 * `text.parse(decode(body))` throws.
 *
 * A literal with a control byte or a byte above 0x7f is read whole because there the text decoder
 * and JSON.parse judge it first (not UTF-8, not JSON), before any base64 is looked at: left in the
 * span, it would be refused as base64 instead, with another error.
 */
export function readPackageBody(body: Uint8Array, text: BodyText): PackageBody {
  if (body.length < LONG_STRING_BYTES) return readWhole(body, text);
  const literals = findLongStrings(body, MIN_LOCATED_CIPHERTEXT);
  const literal = literals?.length === 1 ? literals[0]! : undefined;
  if (!literal || byteKinds(body, literal.start, literal.end) !== 0) return readWhole(body, text);
  const decoders = textDecoders(text.fatal);
  const prefix = standIn();
  let pkg: unknown;
  try {
    const escaped = JSON.stringify(prefix).slice(1, -1);
    pkg = text.parse(decoders.text.decode(body.subarray(0, literal.start)) + escaped + decoders.contents.decode(body.subarray(literal.end)));
  } catch {
    return readWhole(body, text);
  }
  const ep = (pkg as { encrypted_payload?: unknown } | null)?.encrypted_payload;
  if (typeof ep !== 'object' || ep === null || (ep as { ciphertext?: unknown }).ciphertext !== prefix) return readWhole(body, text);
  return { pkg, span: { start: literal.start, end: literal.end } };
}
