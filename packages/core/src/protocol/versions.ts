/**
 * X-Nomyo-Protocol: which wire versions a router speaks (docs/protocol.md, "Discovery"). The one
 * parser of it, for the client and for tests of the router. It comes from the network, so it is
 * read strictly and within a bound, and nothing it holds can make it throw.
 */
import { MAX_PROTOCOL_HEADER_CHARS, PROTOCOL_VERSIONS, type ProtocolVersion } from './constants.js';

/** A version token: a decimal number without sign, leading zeros or fraction ("2", not "02" or "2.0"). */
const VERSION_TOKEN = /^[1-9][0-9]{0,3}$/;

/**
 * The protocol versions an X-Nomyo-Protocol value lists, of those this library speaks, ascending.
 * v1 is always included: no header, an empty, malformed or over-long one all mean "v1 only"; v2
 * only when `2` is one of the comma-separated tokens exactly (spaces and tabs around it allowed).
 * Unknown versions and junk tokens are ignored; a value over {@link MAX_PROTOCOL_HEADER_CHARS} is
 * not looked at.
 *
 * @example
 * parseProtocolHeader('1, 2'); // [1, 2]
 * parseProtocolHeader('2.0');  // [1]
 * parseProtocolHeader(null);   // [1]
 */
export function parseProtocolHeader(value: string | null | undefined): readonly ProtocolVersion[] {
  const listed = new Set<number>([1]);
  if (typeof value === 'string' && value.length <= MAX_PROTOCOL_HEADER_CHARS) {
    for (const token of value.split(',')) {
      const trimmed = token.replace(/^[ \t]+|[ \t]+$/g, '');
      if (VERSION_TOKEN.test(trimmed)) listed.add(Number(trimmed));
    }
  }
  return PROTOCOL_VERSIONS.filter((v) => listed.has(v));
}

/** The X-Nomyo-Protocol value a router that speaks up to `highest` sends: `1, 2`. */
export function formatProtocolHeader(highest: ProtocolVersion): string {
  return PROTOCOL_VERSIONS.filter((v) => v <= highest).join(', ');
}
