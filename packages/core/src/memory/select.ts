/** Picks the SecureMemory a client uses, from its `secureMemory` option. */
import { InvalidArgumentError } from '../errors.js';
import { JsSecureMemory, NoSecureMemory } from './js-memory.js';
import { loadNativeMemory } from './native-loader.js';
import type { SecureMemory } from './secure-memory.js';

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
  return new JsSecureMemory(`zeroing only: ${native.reason}`);
}
