/** Secure memory that lets a test look at the real buffers a client used for its secrets. */
import type { SecureMemory } from '@nomyo/core';

/**
 * Zeroing-only memory that remembers every buffer it handed out or was given to protect (`handed`),
 * a copy of each as it was freed or given (`copies`), and the ones given to protect after the fact
 * (`locked`), so the test can check afterwards that every one is zero and what each held.
 */
export function spyMemory(handed: Uint8Array[], copies: Uint8Array[] = [], locked: Uint8Array[] = []): SecureMemory {
  return {
    kind: 'js',
    lock: (view) => (handed.push(view), locked.push(view), copies.push(view.slice()), false),
    unlock: (view) => view.fill(0),
    zero: (view) => view.fill(0),
    alloc: (size) => {
      const view = new Uint8Array(size);
      handed.push(view);
      return view;
    },
    free: (view) => (copies.push(view.slice()), view.fill(0)),
    info: () => ({ kind: 'js', locking: false, dumpExclusion: false, reason: 'test spy' }),
  };
}
