/** Version of this package, e.g. "0.1.0". */
export declare const version: string;

export interface ProtectionInfo {
  /** `process.platform`. */
  platform: string;
  /** Whether a page can be locked right now (a probe page is locked and released). */
  locking: boolean;
  /** RLIMIT_MEMLOCK in bytes (Infinity when unlimited); the minimum working set size on Windows. */
  lockLimit: number | undefined;
  /**
   * Bytes this addon has locked in the current environment (main thread or worker):
   * secure allocations plus page-rounded lock() ranges not yet unlocked. The OS limit is
   * per process, and overlapping lock() calls are counted once per call.
   */
  lockedBytes: number;
  /** Whether secure allocations are excluded from core dumps. */
  dumpExclusion: boolean;
  lockMechanism: 'mlock' | 'VirtualLock';
  dumpMechanism: 'MADV_DONTDUMP' | 'MADV_NOCORE' | null;
  zeroMechanism: 'explicit_bzero' | 'memset_s' | 'SecureZeroMemory' | 'memset+barrier';
  pageSize: number;
}

/**
 * Locks the pages covering `view` in RAM (mlock / VirtualLock).
 * Returns false when the platform or its limit refuses; the caller should then just zero.
 * Works on JS-owned buffers (needed in Electron, which refuses external buffers).
 * Locking is per page: see {@link unlock}.
 *
 * @example
 * const key = new Uint8Array(32);
 * const locked = lock(key);
 */
export declare function lock(view: ArrayBufferView): boolean;

/**
 * Zeroes `view`, then unlocks the pages covering it. Pages are shared: unlocking one view
 * also unlocks any other locked view on the same pages. Views of a secure allocation are
 * only zeroed; their pages stay locked until {@link free}.
 */
export declare function unlock(view: ArrayBufferView): void;

/** Overwrites `view` with zeros (explicit_bzero / memset_s / SecureZeroMemory). */
export declare function zero(view: ArrayBufferView): void;

/**
 * A buffer of `size` bytes outside the V8 heap: its own page-aligned mapping, locked when
 * the limit allows ({@link isLocked} says), excluded from core dumps where supported.
 * Zeroed and unmapped by {@link free} or, if never freed, by the garbage collector.
 * Throws in runtimes that refuse external buffers (Electron); fall back to `new Uint8Array`.
 *
 * @example
 * const secret = allocSecure(32);
 * try { crypto.getRandomValues(secret); } finally { free(secret); }
 */
export declare function allocSecure(size: number): Uint8Array<ArrayBuffer>;

/**
 * Frees the secure allocation behind `view` now: detaches its ArrayBuffer (every view drops to
 * length 0), then zeroes, unlocks and unmaps it. Any other view is zeroed. Returns whether a
 * secure allocation was freed.
 */
export declare function free(view: ArrayBufferView): boolean;

/** Whether `view` is backed by a live {@link allocSecure} buffer whose pages are locked. */
export declare function isLocked(view: ArrayBufferView): boolean;

/** Whether `view` is backed by a live {@link allocSecure} buffer, locked or not. */
export declare function isSecure(view: ArrayBufferView): boolean;

/** What this process can do right now. */
export declare function protectionInfo(): ProtectionInfo;
