/**
 * Ownership of bytes, as a type: whoever holds an {@link OwnedBytes} must give it back, once, with
 * `release()`, or hand it on (a function that takes one says so, and then releases it or passes it
 * on itself). Every buffer the library takes for a plaintext, a key or a body comes as one, from a
 * {@link ByteSource}: secure memory, the shared wire buffers, or the heap.
 */

/** Where bytes that sit inside a larger buffer of the same owner are, so that a package can be sealed around them. */
export interface Placement {
  /** The whole buffer; the bytes start at `offset` (see protocol/body/layout.ts inPlaceRoom). */
  readonly buffer: Uint8Array<ArrayBuffer>;
  /** Where in `buffer` the bytes start. */
  readonly offset: number;
  /**
   * Gives the whole buffer back once a package was sealed over the bytes and nothing of them is left
   * in it (the sealing zeroes what it does not cover): no second zeroing pass where the owner would
   * otherwise make one. Instead of, never besides, `release()`.
   */
  releaseSealed(): void;
}

/** Bytes somebody must release. */
export interface OwnedBytes {
  /** The bytes; not to be used after `release()`. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /**
   * Whether these bytes may hold a secret: then `release()` zeroes them (and unlocks them, in locked
   * memory). Bytes that are not secure hold ciphertext only, or nothing yet.
   */
  readonly secure: boolean;
  /** Set when the bytes sit inside a larger buffer that has room for their package around them. */
  readonly placement?: Placement | undefined;
  /** Gives the bytes back (zeroed where `secure`). A second call does nothing. */
  release(): void;
}

/** Where owned bytes come from. */
export interface ByteSource {
  /** Whether what it gives may hold secrets (see {@link OwnedBytes.secure}). */
  readonly secure: boolean;
  /** `size` bytes, zeros where the source zeroes what comes back. */
  take(size: number): OwnedBytes;
}

/** `bytes` owned: `release` runs once, however often it is called. */
export function owned(bytes: Uint8Array<ArrayBuffer>, secure: boolean, release: () => void, placement?: Placement): OwnedBytes {
  let released = false;
  return {
    bytes,
    secure,
    placement,
    release() {
      if (released) return;
      released = true;
      release();
    },
  };
}

/**
 * The first `length` bytes of `whole`, in its place: releasing them releases all of it. `whole` is
 * handed over (not to be released itself).
 */
export function head(whole: OwnedBytes, length: number): OwnedBytes {
  if (length === whole.bytes.length) return whole;
  const placement = whole.placement;
  return owned(whole.bytes.subarray(0, length), whole.secure, () => whole.release(), placement);
}

/** Plain heap memory, zeroed when released: for bytes that leave the library (a Response body) or tests. */
export const heapBytes: ByteSource = {
  secure: true,
  take: (size) => {
    const bytes = new Uint8Array(size);
    return owned(bytes, true, () => bytes.fill(0));
  },
};
