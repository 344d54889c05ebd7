/**
 * Reuses large allocations. Mapping, locking and unmapping 10 MiB for every request costs more than
 * the request's own crypto; a buffer that stays mapped (and locked) and is zeroed between uses costs
 * almost nothing. Every idle buffer is all zeros where the pool zeroes: a view is zeroed when it
 * comes back.
 */
import { LARGE_BODY_BYTES } from '../sizes.js';
import { owned, type ByteSource, type OwnedBytes } from './owned-bytes.js';

const PAGE = 4096;
/** At most this much memory is kept for reuse (the rest goes back to the system). */
export const MAX_POOLED_BYTES = 32 * 1024 * 1024;
const MAX_POOLED_BUFFERS = 8;

/** How a pool gets, gives back and zeroes its buffers (SecureMemory's locked ones, or the heap's). */
export interface Allocator {
  allocate(size: number): Uint8Array<ArrayBuffer>;
  release(buffer: Uint8Array): void;
  /** Zeroes a view that comes back; a no-op for buffers that only ever hold ciphertext. */
  zero(view: Uint8Array): void;
  /** Whether a buffer given back may be kept for reuse (default: yes); one that may not is released. */
  reusable?(buffer: Uint8Array): boolean;
}

export class BufferPool implements ByteSource {
  #idle: Uint8Array<ArrayBuffer>[] = [];
  #idleBytes = 0;

  /**
   * @param secure whether what it hands out may hold secrets (its allocator then zeroes)
   * @param slack a large new buffer is made this much larger than asked (see {@link take}): 1/32 by
   * default, for locked memory, where every byte is resident; more is free where untouched pages cost nothing.
   */
  constructor(
    private readonly allocator: Allocator,
    readonly secure: boolean,
    private readonly slack = 1 / 32,
  ) {}

  /** `size` bytes, from an idle buffer when one is large enough; released, they are zeroed and kept for reuse. */
  take(size: number): OwnedBytes {
    let best = -1;
    for (let i = 0; i < this.#idle.length; i++) {
      const length = this.#idle[i]!.length;
      if (length >= size && (best === -1 || length < this.#idle[best]!.length)) best = i;
    }
    let backing: Uint8Array<ArrayBuffer>;
    if (best === -1) {
      // Round up so that requests of similar sizes can share a buffer later; a large one gets some
      // slack, so that the next one a little larger (an answer a few bytes longer than its request)
      // still fits in it. Pages of the slack that are never written are never touched.
      const unit = size > LARGE_BODY_BYTES ? LARGE_BODY_BYTES : PAGE;
      const wanted = size > LARGE_BODY_BYTES ? size + Math.ceil(size * this.slack) : size;
      backing = this.allocator.allocate(Math.max(unit, Math.ceil(wanted / unit) * unit));
    } else {
      backing = this.#idle.splice(best, 1)[0]!;
      this.#idleBytes -= backing.length;
    }
    const view = backing.subarray(0, size);
    return owned(view, this.secure, () => this.#giveBack(backing, view));
  }

  /** Bytes held idle for reuse. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  #giveBack(backing: Uint8Array<ArrayBuffer>, view: Uint8Array): void {
    this.allocator.zero(view);
    const reusable = this.allocator.reusable?.(backing) ?? true;
    if (reusable && this.#idle.length < MAX_POOLED_BUFFERS && this.#idleBytes + backing.length <= MAX_POOLED_BYTES) {
      this.#idle.push(backing);
      this.#idleBytes += backing.length;
    } else {
      this.allocator.release(backing);
    }
  }
}
