/**
 * Reuses secure allocations. Mapping, locking and unmapping 10 MiB for every request costs more
 * than the request's own crypto; a buffer that stays locked and is zeroed between uses costs
 * almost nothing. Every buffer in the pool is all zeros: a view is zeroed when it comes back.
 */
const PAGE = 4096;
const LARGE = 64 * 1024;
/** At most this much locked memory is kept for reuse (the rest goes back to the system). */
export const MAX_POOLED_BYTES = 32 * 1024 * 1024;
const MAX_POOLED_BUFFERS = 8;

export interface SecureAllocator {
  allocate(size: number): Uint8Array<ArrayBuffer>;
  release(buffer: Uint8Array): void;
  zero(view: Uint8Array): void;
}

export class SecureBufferPool {
  #idle: Uint8Array<ArrayBuffer>[] = [];
  #idleBytes = 0;
  /** Each view handed out, to the whole allocation behind it. */
  readonly #backing = new WeakMap<Uint8Array, Uint8Array<ArrayBuffer>>();

  /**
   * @param slack a large new buffer is made this much larger than asked (see {@link take}): 1/32 by
   * default, for locked memory, where every byte is resident; more is free where untouched pages cost nothing.
   */
  constructor(
    private readonly allocator: SecureAllocator,
    private readonly slack = 1 / 32,
  ) {}

  /** A zeroed view of `size` bytes, from an idle buffer when one is large enough. */
  take(size: number): Uint8Array<ArrayBuffer> {
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
      const unit = size > LARGE ? LARGE : PAGE;
      const wanted = size > LARGE ? size + Math.ceil(size * this.slack) : size;
      backing = this.allocator.allocate(Math.max(unit, Math.ceil(wanted / unit) * unit));
    } else {
      backing = this.#idle.splice(best, 1)[0]!;
      this.#idleBytes -= backing.length;
    }
    const view = backing.subarray(0, size);
    this.#backing.set(view, backing);
    return view;
  }

  /** Zeroes a view from {@link take} and keeps its buffer for reuse (or releases it). False: not ours. */
  give(view: Uint8Array): boolean {
    const backing = this.#backing.get(view);
    if (!backing) return false;
    this.#backing.delete(view);
    this.allocator.zero(view);
    if (this.#idle.length < MAX_POOLED_BUFFERS && this.#idleBytes + backing.length <= MAX_POOLED_BYTES) {
      this.#idle.push(backing);
      this.#idleBytes += backing.length;
    } else {
      this.allocator.release(backing);
    }
    return true;
  }

  /** Bytes held idle for reuse (locked, all zeros). */
  get idleBytes(): number {
    return this.#idleBytes;
  }
}
