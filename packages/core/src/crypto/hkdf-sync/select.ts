/**
 * The `#hkdf-sync` of this runtime, loaded on first use and only in Node.js (as `#gcm` is, see
 * gcm/select.ts), or undefined where there is none. Other runtimes that present themselves as
 * Node.js (Bun, Deno) may lack a piece of it: it is tried once on a throwaway key, and only used if
 * that works, since the keys hkdf.ts makes for it cannot go back to Web Crypto's HKDF.
 */
import { inNode } from '../../env.js';
import { V2_HKDF_HASH } from '../../protocol/constants.js';
import { subtle, type Bytes } from '../subtle.js';

export type HkdfSync = (base: CryptoKey, salt: Bytes, info: Bytes, length: number) => Uint8Array<ArrayBuffer>;

let selected: Promise<HkdfSync | undefined> | undefined;

export function hkdfSyncOfRuntime(): Promise<HkdfSync | undefined> {
  selected ??= inNode() ? import('#hkdf-sync').then((m: { available: boolean; hkdfSync: HkdfSync }) => (m.available ? works(m.hkdfSync) : undefined), () => undefined) : Promise.resolve(undefined);
  return selected;
}

async function works(hkdfSync: HkdfSync): Promise<HkdfSync | undefined> {
  try {
    const probe = await subtle().importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: V2_HKDF_HASH }, true, ['sign']);
    return hkdfSync(probe, new Uint8Array(0) as Bytes, new Uint8Array(1) as Bytes, 32).length === 32 ? hkdfSync : undefined;
  } catch {
    return undefined;
  }
}
