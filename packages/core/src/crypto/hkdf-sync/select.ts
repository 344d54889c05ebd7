/**
 * The `#hkdf-sync` of this runtime, loaded on first use and only in Node.js (as `#gcm` is, see
 * gcm/select.ts), or undefined where there is none. Other runtimes that present themselves as
 * Node.js (Bun, Deno) may lack a piece of it: it is tried once on a throwaway key, and only used if
 * that works, since the keys hkdf.ts makes for it cannot go to Web Crypto's HKDF.
 */
import { inNode } from '../../env.js';
import type { Bytes } from '../subtle.js';

/** Synchronous HKDF-SHA256: the input key material made once, then derived from. */
export interface HkdfSync {
  /** `ikm` as input key material (copied: the caller zeroes its own). */
  secretKey(ikm: Bytes): object;
  /** HKDF-SHA256 of `base` (from secretKey) to `length` bytes. */
  hkdfSync(base: object, salt: Bytes, info: Bytes, length: number): Uint8Array<ArrayBuffer>;
}

let selected: Promise<HkdfSync | undefined> | undefined;

export function hkdfSyncOfRuntime(): Promise<HkdfSync | undefined> {
  selected ??= inNode() ? import('#hkdf-sync').then((m: HkdfSync & { available: boolean }) => (m.available ? works(m) : undefined), () => undefined) : Promise.resolve(undefined);
  return selected;
}

function works(sync: HkdfSync): HkdfSync | undefined {
  try {
    const probe = sync.secretKey(new Uint8Array(32) as Bytes);
    return sync.hkdfSync(probe, new Uint8Array(0) as Bytes, new Uint8Array(1) as Bytes, 32).length === 32 ? { secretKey: sync.secretKey, hkdfSync: sync.hkdfSync } : undefined;
  } catch {
    return undefined;
  }
}
