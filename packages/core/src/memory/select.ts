/** Picks the SecureMemory a client uses, from its `secureMemory` option. */
import { InvalidArgumentError } from '../errors.js';
import { JsSecureMemory, NoSecureMemory } from './js-memory.js';
import { loadNativeMemory } from './native-loader.js';
import type { MemoryProtectionInfo, SecureMemory } from './secure-memory.js';

/** `true` (default): the addon when installed, else zeroing only. `'require-native'`: the addon or an error. */
export type SecureMemoryOption = boolean | 'require-native' | SecureMemory;

export async function selectSecureMemory(option: SecureMemoryOption = true): Promise<SecureMemory> {
  if (option === false) return new NoSecureMemory();
  if (typeof option === 'object') return option;
  const native = await loadNativeMemory();
  if (native.memory) return native.memory;
  if (option === 'require-native') {
    throw new InvalidArgumentError(`secureMemory: 'require-native' but the addon is unavailable: ${native.reason}`);
  }
  return new JsSecureMemory(`zeroing only: ${native.reason}`, native.failure);
}

/**
 * Which memory protection a client with this `secureMemory` option would use, and why.
 *
 * @example
 * const p = await getMemoryProtection();
 * // { kind: 'native', locking: true, dumpExclusion: true, reason: '@nomyo/native 0.1.0 (mlock, MADV_DONTDUMP)', ... }
 * // or { kind: 'js', reason: 'zeroing only: @nomyo/native not installed', ... }
 */
export async function getMemoryProtection(option?: SecureMemoryOption): Promise<MemoryProtectionInfo> {
  return (await selectSecureMemory(option)).info();
}
