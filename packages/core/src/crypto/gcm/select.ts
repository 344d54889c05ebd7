/**
 * The `#gcm` of this runtime, loaded on first use and only in Node.js (as `#primes` is): a static
 * import of a package specifier does not resolve where core's modules are loaded unbundled, as in a
 * browser page without an import map. Everywhere else it is Web Crypto in one call.
 */
import { inNode } from '../../env.js';
import { webCryptoGcm } from './browser.js';
import type { GcmPieces } from './types.js';

let selected: Promise<GcmPieces> | undefined;

export function gcmPieces(): Promise<GcmPieces> {
  selected ??= inNode() ? import('#gcm').then((m) => m.gcmPieces, () => webCryptoGcm) : Promise.resolve(webCryptoGcm);
  return selected;
}
