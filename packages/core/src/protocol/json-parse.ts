/**
 * `JSON.parse(decode(bytes))` with each long string (see json-strings.ts) decoded once, straight
 * from the bytes. Exact: the value read is that of `JSON.parse(decode(bytes))`, refusals included;
 * what this is not sure about or would be slower at (a long literal with escapes, a stand-in that
 * ends up as a key, more literals than it is worth scanning) is parsed whole.
 */
import { CONTROL_BYTE, NON_ASCII_BYTE, byteKinds } from './json-escapes.js';
import { findLongStrings, standIn, type StringLiteral } from './json-strings.js';
import { LONG_STRING_BYTES } from '../sizes.js';
import { NodeBuffer, bufferView } from '../node-buffer.js';

export interface ParseBytesOptions {
  /** Refuse bytes that are not UTF-8 (TextDecoder `fatal`), or replace them with U+FFFD. */
  fatal: boolean;
  /** Parses the skeleton text; JSON.parse, or a wrapper that checks more (nesting depth) and maps errors. */
  parse?: (text: string) => unknown;
}

/** UTF-8 decoders for text read in parts, split at quotes: together they give what one decode of the whole gives. */
export interface Decoders {
  /** Strips a byte order mark at the start of the text, as decoding the whole text does. */
  text: Utf8Decoder;
  /** Keeps one: a literal's contents may well start with U+FEFF. */
  contents: Utf8Decoder;
}

/** A `TextDecoder` as used here, named by what it does: not every TypeScript project has lib "DOM"'s type. */
export interface Utf8Decoder {
  /** The text of `bytes`. */
  decode(bytes: Uint8Array): string;
}
const decoders: Record<'fatal' | 'lenient', Decoders> = {
  fatal: { text: new TextDecoder('utf-8', { fatal: true }), contents: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) },
  lenient: { text: new TextDecoder(), contents: new TextDecoder('utf-8', { ignoreBOM: true }) },
};

/**
 * `bytes[start, end)`, all below 0x80, as text: what `utf8.decode` gives them. ASCII is latin1 too,
 * whose decoding in Node is a plain copy into a one-byte string: twice the speed of TextDecoder.
 */
function decodeAscii(bytes: Uint8Array, start: number, end: number, utf8: Utf8Decoder): string {
  return NodeBuffer ? bufferView(bytes, start, end).toString('latin1') : utf8.decode(bytes.subarray(start, end));
}

/** The decoders for text that is refused unless UTF-8 (`fatal`), or read with U+FFFD for bad bytes. */
export function textDecoders(fatal: boolean): Decoders {
  return decoders[fatal ? 'fatal' : 'lenient'];
}

/** Where each stand-in sits in the parsed skeleton, or undefined when one is not a plain value exactly once. */
function findStandIns(value: unknown, prefix: string, count: number): Array<[Record<string, unknown>, string]> | undefined {
  const holders: Array<[Record<string, unknown>, string] | undefined> = new Array(count);
  let ok = true;
  const visit = (node: unknown): void => {
    if (typeof node !== 'object' || node === null || !ok) return;
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (key.startsWith(prefix)) ok = false;
      const v = record[key];
      if (typeof v === 'string') {
        if (v.startsWith(prefix)) {
          const i = Number(v.slice(prefix.length));
          if (!Number.isInteger(i) || i < 0 || i >= count || holders[i]) ok = false;
          else holders[i] = [record, key];
        }
      } else visit(v);
    }
  };
  visit(value);
  // A literal dropped by a duplicate key leaves its stand-in unplaced: parsed whole then.
  for (let i = 0; i < count; i++) if (holders[i] === undefined) ok = false;
  return ok ? (holders as Array<[Record<string, unknown>, string]>) : undefined;
}

/**
 * `parse(decode(bytes))`, with each long string (one without escapes: see {@link findLongStrings})
 * decoded once, straight from `bytes`, which are only read. Throws what `parse(decode(bytes))` throws.
 */
export function parseJsonBytes(bytes: Uint8Array, options: ParseBytesOptions): unknown {
  const { text, contents } = textDecoders(options.fatal);
  const parse = options.parse ?? ((t: string) => JSON.parse(t) as unknown);
  const plain = () => parse(text.decode(bytes));
  if (bytes.length < LONG_STRING_BYTES) return plain();
  const literals = findLongStrings(bytes, LONG_STRING_BYTES);
  if (!literals || literals.length === 0) return plain();
  // The literals that are ASCII bytes: decoded at a copy's speed.
  const ascii = new Set<StringLiteral>();
  for (const literal of literals) {
    const kinds = byteKinds(bytes, literal.start, literal.end);
    if (kinds & CONTROL_BYTE) return plain();
    if (!(kinds & NON_ASCII_BYTE)) ascii.add(literal);
  }
  const prefix = standIn();
  let value: unknown;
  try {
    let at = 0;
    let skeleton = '';
    literals.forEach((literal, i) => {
      skeleton += (at === 0 ? text : contents).decode(bytes.subarray(at, literal.start)) + JSON.stringify(prefix + i).slice(1, -1);
      at = literal.end;
    });
    skeleton += contents.decode(bytes.subarray(at));
    value = parse(skeleton);
  } catch {
    return plain(); // its error, exactly
  }
  // Boxed, so that a stand-in at the top (the text is one long string) has a holder too.
  const box = { value };
  const holders = findStandIns(box, prefix, literals.length);
  if (!holders) return plain();
  literals.forEach((literal, i) => {
    const [holder, key] = holders[i]!;
    holder[key] = ascii.has(literal) ? decodeAscii(bytes, literal.start, literal.end, contents) : contents.decode(bytes.subarray(literal.start, literal.end));
  });
  return box.value;
}

