/** SHA-256 fingerprints of SPKI DER: how a person (and pinning) names a public key. */
import { encodeBase64 } from '../protocol/base64.js';
import { subtle, type Bytes } from './subtle.js';

export async function sha256(data: Bytes): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', data));
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** The lowercase hex SHA-256 of a public key's SPKI DER. */
export async function spkiFingerprint(spki: Bytes): Promise<string> {
  return toHex(await sha256(spki));
}

/** The same fingerprint in the `sha256:` + base64 form (as in HPKP and SSH). */
export function fingerprintBase64(hex: string): string {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return `sha256:${encodeBase64(bytes)}`;
}
