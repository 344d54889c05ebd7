import type { MemoryProtectionInfo, SecureMemory } from './secure-memory.js';
import { PooledMemory } from './pooled-memory.js';

/**
 * Zeroing only: JavaScript cannot lock pages or keep the GC from copying. Allocations are pooled
 * (zeroed on return) so that large requests in a row reuse memory instead of touching new pages.
 */
export class JsSecureMemory implements SecureMemory {
  readonly kind = 'js';
  readonly #pool = new PooledMemory({ allocate: (size) => new Uint8Array(size), release: () => {}, zero: (view) => view.fill(0) });
  /**
   * @param addonFailure why an installed @nomyo/native would not load, when that is why this memory
   * is used: a client is told (SecureByteContext.take), since whoever installed it expects locking.
   */
  constructor(
    private readonly reason = 'pure JavaScript: zeroing only',
    readonly addonFailure?: string,
  ) {}
  lock(): boolean {
    return false;
  }
  unlock(view: Uint8Array): void {
    view.fill(0);
  }
  zero(view: Uint8Array): void {
    view.fill(0);
  }
  alloc(size: number): Uint8Array<ArrayBuffer> {
    return this.#pool.alloc(size);
  }
  free(view: Uint8Array): void {
    this.#pool.free(view);
  }
  info(): MemoryProtectionInfo {
    return { kind: 'js', locking: false, dumpExclusion: false, reason: this.reason };
  }
}

/** `secureMemory: false`: the caller opted out; nothing is zeroed. */
export class NoSecureMemory implements SecureMemory {
  readonly kind = 'none';
  lock(): boolean {
    return false;
  }
  unlock(): void {}
  zero(): void {}
  alloc(size: number): Uint8Array<ArrayBuffer> {
    return new Uint8Array(size);
  }
  free(): void {}
  info(): MemoryProtectionInfo {
    return { kind: 'none', locking: false, dumpExclusion: false, reason: 'disabled by secureMemory: false' };
  }
}
