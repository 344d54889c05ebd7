/** PEM <-> DER for the labels we use (PUBLIC KEY, PRIVATE KEY, ENCRYPTED PRIVATE KEY). */
import { decodeBase64, encodeBase64 } from '../protocol/base64.js';
import { SecurityError } from '../errors.js';
import type { Bytes } from './subtle.js';

/** The PEM blocks the library reads and writes: SPKI, PKCS#8, and PKCS#8 encrypted with PBES2. */
export type PemLabel = 'PUBLIC KEY' | 'PRIVATE KEY' | 'ENCRYPTED PRIVATE KEY';

/** The DER inside the first `label` block of `pem`. */
export function pemToDer(pem: string, label: PemLabel): Bytes {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const start = pem.indexOf(begin);
  const stop = pem.indexOf(end, start + begin.length);
  if (start === -1 || stop === -1) throw new SecurityError(`not a PEM ${label}`);
  const body = pem.slice(start + begin.length, stop).replace(/[\r\n\t ]/g, '');
  return decodeBase64(body) as Bytes;
}

/** `der` as a PEM block with `label`, base64 in lines of 64 characters. */
export function derToPem(der: Uint8Array, label: PemLabel): string {
  const b64 = encodeBase64(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Which PEM block the text holds, if any of ours. */
export function pemLabelOf(pem: string): PemLabel | undefined {
  const m = /-----BEGIN ([A-Z ]+)-----/.exec(pem);
  const label = m?.[1];
  return label === 'PUBLIC KEY' || label === 'PRIVATE KEY' || label === 'ENCRYPTED PRIVATE KEY' ? label : undefined;
}
