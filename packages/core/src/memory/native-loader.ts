/** Finds @nomyo/native at first use. Filled in by the native issue; until then: never present. */
import type { SecureMemory } from './secure-memory.js';

export interface NativeLoadResult {
  memory?: SecureMemory;
  reason: string;
}

export async function loadNativeMemory(): Promise<NativeLoadResult> {
  return { reason: '@nomyo/native not installed' };
}
