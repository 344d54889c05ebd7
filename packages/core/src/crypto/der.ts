/**
 * A minimal, strict DER reader and writer: only the universal types that PKCS#8 and PBES2 need
 * (SEQUENCE, OCTET STRING, small non-negative INTEGER, OBJECT IDENTIFIER, NULL).
 *
 * Strict on purpose: key files are attacker-controlled input, so the reader refuses indefinite
 * and non-minimal lengths, high tag numbers, non-minimal or negative integers and trailing bytes,
 * and checks every length against the bytes that are really there before slicing. Failures are
 * a {@link DerError}; the caller turns them into the error its own API promises.
 */

export const TAG_INTEGER = 0x02;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_SEQUENCE = 0x30;

/** Malformed or unexpected DER. Internal: callers rethrow it as a key file error. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Lengths above this are refused: no key file comes near it, and it keeps lengths in safe integers. */
const MAX_LENGTH_BYTES = 4;
/** 6 bytes (< 2^48) is plenty for iteration counts and key lengths, and exact as a JS number. */
const MAX_INTEGER_BYTES = 6;

/** One TLV; `value` is a view into the input, not a copy. */
export interface DerElement {
  tag: number;
  value: Uint8Array;
}

/** Reads consecutive elements from `bytes` (a whole buffer or the contents of a constructed element). */
export class DerReader {
  private pos = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** True when every byte has been read. */
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  /** The tag of the next element, or undefined at the end: for OPTIONAL and DEFAULT fields. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.bytes[this.pos];
  }

  /** The next element, whatever its tag. */
  read(): DerElement {
    const bytes = this.bytes;
    let p = this.pos;
    if (p + 2 > bytes.length) throw new DerError('truncated element');
    const tag = bytes[p++]!;
    // High tag numbers (low bits 11111) take more bytes; nothing we parse uses them.
    if ((tag & 0x1f) === 0x1f) throw new DerError('unsupported tag');
    const first = bytes[p++]!;
    let length: number;
    if (first < 0x80) {
      length = first;
    } else {
      const n = first & 0x7f;
      if (n === 0) throw new DerError('indefinite length is not DER');
      if (n > MAX_LENGTH_BYTES) throw new DerError('length too large');
      if (p + n > bytes.length) throw new DerError('truncated length');
      if (bytes[p] === 0) throw new DerError('non-minimal length');
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + bytes[p++]!;
      if (length < 0x80) throw new DerError('non-minimal length');
    }
    if (length > bytes.length - p) throw new DerError('truncated contents');
    this.pos = p + length;
    return { tag, value: bytes.subarray(p, p + length) };
  }

  /** The contents of the next element, which must have tag `tag`. */
  expect(tag: number, what: string): Uint8Array {
    if (this.peekTag() !== tag) throw new DerError(`expected ${what}`);
    return this.read().value;
  }

  /** A reader over the next element's contents; it must be a SEQUENCE. */
  sequence(what = 'SEQUENCE'): DerReader {
    return new DerReader(this.expect(TAG_SEQUENCE, what));
  }

  octetString(what = 'OCTET STRING'): Uint8Array {
    return this.expect(TAG_OCTET_STRING, what);
  }

  /** The encoded contents of the next OBJECT IDENTIFIER, to compare with {@link oid} constants. */
  oid(what = 'OBJECT IDENTIFIER'): Uint8Array {
    const v = this.expect(TAG_OID, what);
    if (v.length === 0 || (v[v.length - 1]! & 0x80) !== 0) throw new DerError('malformed OBJECT IDENTIFIER');
    return v;
  }

  null(): void {
    if (this.expect(TAG_NULL, 'NULL').length !== 0) throw new DerError('malformed NULL');
  }

  /** A small non-negative INTEGER, minimally encoded. */
  integer(what = 'INTEGER'): number {
    const v = this.expect(TAG_INTEGER, what);
    if (v.length === 0) throw new DerError('empty INTEGER');
    if ((v[0]! & 0x80) !== 0) throw new DerError(`negative ${what}`);
    if (v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0) throw new DerError('non-minimal INTEGER');
    // A leading 0x00 only carries the sign, so it does not count against the size limit.
    const digits = v[0] === 0 ? v.subarray(1) : v;
    if (digits.length > MAX_INTEGER_BYTES) throw new DerError(`${what} out of range`);
    let n = 0;
    for (const b of digits) n = n * 256 + b;
    return n;
  }

  /** Throws unless every byte has been consumed. */
  end(what = 'element'): void {
    if (!this.done) throw new DerError(`unexpected data after ${what}`);
  }
}

/** Parses `bytes` as exactly one SEQUENCE with nothing after it, and returns a reader over its contents. */
export function readSequence(bytes: Uint8Array, what = 'SEQUENCE'): DerReader {
  const outer = new DerReader(bytes);
  const inner = outer.sequence(what);
  outer.end(what);
  return inner;
}

function encodeLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return [0x80 | out.length, ...out];
}

/** One TLV with the given contents. */
export function derEncode(tag: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const length = contents.reduce((sum, c) => sum + c.length, 0);
  const header = encodeLength(length);
  const out = new Uint8Array(1 + header.length + length);
  out[0] = tag;
  out.set(header, 1);
  let p = 1 + header.length;
  for (const c of contents) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export const derSequence = (...elements: Uint8Array[]): Uint8Array<ArrayBuffer> => derEncode(TAG_SEQUENCE, ...elements);
export const derOctetString = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => derEncode(TAG_OCTET_STRING, bytes);
export const derNull = (): Uint8Array<ArrayBuffer> => derEncode(TAG_NULL);
export const derOid = (encoded: Uint8Array): Uint8Array<ArrayBuffer> => derEncode(TAG_OID, encoded);

/** A non-negative safe integer as a minimal DER INTEGER. */
export function derInteger(n: number): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('derInteger: a non-negative safe integer is required');
  const digits: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) digits.unshift(v % 256);
  // Zero is one 0x00 byte; a high first bit needs a 0x00 in front so it does not read as negative.
  if (digits.length === 0 || digits[0]! >= 0x80) digits.unshift(0);
  return derEncode(TAG_INTEGER, Uint8Array.from(digits));
}

/** The DER contents of a dotted OBJECT IDENTIFIER, e.g. `oid('1.2.840.113549.1.5.13')`. */
export function oid(dotted: string): Uint8Array<ArrayBuffer> {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const [a0, a1, ...rest] = arcs as [number, number, ...number[]];
  for (const arc of [a0 * 40 + a1, ...rest]) {
    const group = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) group.unshift(0x80 | (v % 128));
    out.push(...group);
  }
  return Uint8Array.from(out);
}

/** Dotted form of encoded OID contents, for error messages only. */
export function oidToString(encoded: Uint8Array): string {
  const arcs: number[] = [];
  let v = 0;
  for (const b of encoded) {
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
