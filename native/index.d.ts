/** Version of this package, e.g. "0.1.0". */
export declare const version: string;

/** What this addon can do on this machine, now: {@link protectionInfo}'s answer. */
export interface ProtectionInfo {
  /** `process.platform`. */
  platform: string;
  /** Whether a page can be locked right now (a probe page is locked and released). */
  locking: boolean;
  /** RLIMIT_MEMLOCK in bytes (Infinity when unlimited); the minimum working set size on Windows. */
  lockLimit: number | undefined;
  /**
   * Bytes this addon holds locked in the whole process (main thread and every worker):
   * locked secure allocations plus each page covered by a lock() not yet unlocked, counted
   * once however many locked views share it. Like the OS limit, it is per process.
   */
  lockedBytes: number;
  /** Whether secure allocations are excluded from core dumps. */
  dumpExclusion: boolean;
  /** The system call that locks pages: `mlock` (POSIX) or `VirtualLock` (Windows). */
  lockMechanism: 'mlock' | 'VirtualLock';
  /** How secure allocations are kept out of core dumps (`madvise` flag); null where the system has none. */
  dumpMechanism: 'MADV_DONTDUMP' | 'MADV_NOCORE' | null;
  /** How memory is zeroed so the compiler cannot remove it; `memset+barrier` where no such call exists. */
  zeroMechanism: 'explicit_bzero' | 'memset_s' | 'SecureZeroMemory' | 'memset+barrier';
  /** The system's page size in bytes: the unit of locking. */
  pageSize: number;
}

/**
 * Locks the pages covering `view` in RAM (mlock / VirtualLock).
 * Returns false when the platform or its limit refuses; the caller should then just zero.
 * Works on JS-owned buffers (needed in Electron, which refuses external buffers).
 * Locks are counted per page across the process: see {@link unlock}. A refused lock() leaves
 * nothing locked. Each successful lock() needs its own unlock().
 *
 * @example
 * const key = new Uint8Array(32);
 * const locked = lock(key);
 */
export declare function lock(view: ArrayBufferView): boolean;

/**
 * Zeroes `view`, then gives back one earlier {@link lock} of the same bytes (same address and
 * length, through any view object). A page is unlocked only when no other locked view, in any
 * thread, still covers it. A view with no lock() outstanding is only zeroed. Views of a secure
 * allocation are only zeroed; their pages stay locked until {@link free}.
 * Unlock a locked view before its buffer is dropped or transferred.
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
