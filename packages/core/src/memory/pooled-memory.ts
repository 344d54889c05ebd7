/**
 * SecureMemory's alloc/free over a BufferPool: the view `alloc` handed out is how `free` finds what
 * to give back (SecureMemory is a public interface of views, so it keeps that map; inside the
 * library bytes travel as OwnedBytes and need none).
 */
import { BufferPool, type Allocator } from './buffer-pool.js';
import type { OwnedBytes } from './owned-bytes.js';

export class PooledMemory {
  readonly #pool: BufferPool;
  readonly #taken = new WeakMap<Uint8Array, OwnedBytes>();

  constructor(private readonly allocator: Allocator) {
    this.#pool = new BufferPool(allocator, true);
  }

  alloc(size: number): Uint8Array<ArrayBuffer> {
    const taken = this.#pool.take(size);
    this.#taken.set(taken.bytes, taken);
    return taken.bytes;
  }

  /** Zeroes `view` and keeps its buffer for reuse; a view that did not come from {@link alloc} is only zeroed. */
  free(view: Uint8Array): void {
    const taken = this.#taken.get(view);
    if (!taken) return this.allocator.zero(view);
    this.#taken.delete(view);
    taken.release();
  }

  /** Bytes held idle for reuse. */
  get idleBytes(): number {
    return this.#pool.idleBytes;
  }
}
