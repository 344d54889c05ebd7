/**
 * PEM <-> DER for the labels we use (PUBLIC KEY, PRIVATE KEY, ENCRYPTED PRIVATE KEY). A PEM given as
 * bytes (a file's, as read) is decoded without ever becoming a JavaScript string, and one written
 * as bytes is made without one: a private key stored unencrypted is its PEM's base64, and a string
 * cannot be zeroed.
 */
import { base64Length, base64SpanLength, decodeBase64Span, encodeBase64Into } from '../protocol/base64-bytes.js';
import { SecurityError } from '../errors.js';
import type { Bytes } from './subtle.js';

/** The PEM blocks the library reads and writes: SPKI, PKCS#8, and PKCS#8 encrypted with PBES2. */
export type PemLabel = 'PUBLIC KEY' | 'PRIVATE KEY' | 'ENCRYPTED PRIVATE KEY';

const encoder = new TextEncoder();
/** Base64 bytes a PEM line holds (64 characters). */
const LINE_BYTES = 48;
const NEWLINE = 0x0a;
const DASH = 0x2d;
const decoder = new TextDecoder();

/** The DER inside the first `label` block of `pem`: its text, or its bytes (ASCII), which never become a string. */
export function pemToDer(pem: string | Uint8Array, label: PemLabel): Bytes {
  return withBytes(pem, (bytes) => pemBytesToDer(bytes, label));
}

function pemBytesToDer(pem: Uint8Array, label: PemLabel): Bytes {
  const begin = encoder.encode(`-----BEGIN ${label}-----`);
  const start = indexOfBytes(pem, begin, 0);
  const stop = start === -1 ? -1 : indexOfBytes(pem, encoder.encode(`-----END ${label}-----`), start + begin.length);
  if (start === -1 || stop === -1) throw new SecurityError(`not a PEM ${label}`);
  // The base64 without its line breaks, in a buffer of its own, zeroed once decoded.
  const body = new Uint8Array(stop - start - begin.length);
  let length = 0;
  for (let i = start + begin.length; i < stop; i++) {
    const c = pem[i]!;
    if (c !== 0x0d && c !== NEWLINE && c !== 0x09 && c !== 0x20) body[length++] = c;
  }
  let der: Bytes | undefined;
  try {
    der = new Uint8Array(base64SpanLength(body, 0, length));
    decodeBase64Span(body, 0, length, der, 0, true);
    return der;
  } catch (err) {
    der?.fill(0);
    // The decoder speaks of packages, whose base64 it mostly reads.
    throw err instanceof SecurityError ? new SecurityError(`not a PEM ${label}: its base64 is invalid`) : err;
  } finally {
    body.fill(0);
  }
}

/** `der` as a PEM block with `label`, base64 in lines of 64 characters. */
export function derToPem(der: Uint8Array, label: PemLabel): string {
  return decoder.decode(derToPemBytes(der, label));
}

/** {@link derToPem}'s text as bytes, made without a string: for a private key, zero it once written. */
export function derToPemBytes(der: Uint8Array, label: PemLabel): Bytes {
  const head = encoder.encode(`-----BEGIN ${label}-----\n`);
  const tail = encoder.encode(`-----END ${label}-----\n`);
  const out = new Uint8Array(head.length + base64Length(der.length) + Math.ceil(der.length / LINE_BYTES) + tail.length);
  out.set(head);
  let at = head.length;
  for (let i = 0; i < der.length; i += LINE_BYTES) {
    at = encodeBase64Into(der.subarray(i, i + LINE_BYTES), out, at, true);
    out[at++] = NEWLINE;
  }
  out.set(tail, at);
  return out;
}

/** Whether `pem` (text or bytes) holds the line `-----BEGIN <label>-----`, of any label. */
export function hasPemBlock(pem: string | Uint8Array, label: string): boolean {
  return withBytes(pem, (bytes) => indexOfBytes(bytes, encoder.encode(`-----BEGIN ${label}-----`), 0) !== -1);
}

/** The label of the first PEM block in `pem` (text or bytes), up to 40 characters; undefined when none. Only the label becomes a string. */
export function firstPemLabel(pem: string | Uint8Array): string | undefined {
  return withBytes(pem, (bytes) => labelAt(bytes.subarray(0, 4096)));
}

function labelAt(head: Uint8Array): string | undefined {
  const start = indexOfBytes(head, encoder.encode('-----BEGIN '), 0);
  if (start === -1) return undefined;
  let label = '';
  for (let i = start + '-----BEGIN '.length; i < head.length && label.length <= 40; i++) {
    // '-': the label ends, if the line's five dashes do.
    if (head[i] === DASH) return /^[A-Z0-9 ]{1,40}$/.test(label) && dashesAt(head, i) ? label : undefined;
    label += String.fromCharCode(head[i]!);
  }
  return undefined;
}

/** `use` on a PEM's bytes: as given, or its text's, in a copy zeroed after (it may be a key's). */
function withBytes<T>(pem: string | Uint8Array, use: (bytes: Uint8Array) => T): T {
  if (typeof pem !== 'string') return use(pem);
  const bytes = encoder.encode(pem);
  try {
    return use(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** Whether five dashes start at `at`. */
function dashesAt(bytes: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 5; i++) if (bytes[i] !== DASH) return false;
  return true;
}

/** Where `needle` first occurs in `haystack` from `from`; -1 when nowhere. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const last = haystack.length - needle.length;
  outer: for (let i = from; i <= last; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
