/**
 * What the library asks of memory that holds secrets. The pure-JS implementation can only zero;
 * @nomyo/native (when installed) also locks pages out of swap and core dumps.
 */

/** What protects secrets in memory in this process, as `getMemoryProtection()` reports it. */
export interface MemoryProtectionInfo {
  /** 'native': @nomyo/native locks and zeroes; 'js': zeroing only; 'none': `secureMemory: false`. */
  kind: 'native' | 'js' | 'none';
  /** Whether pages can be locked (mlock/VirtualLock) right now. */
  locking: boolean;
  /** Whether secure allocations are excluded from core dumps. */
  dumpExclusion: boolean;
  /** Why this protection is in use (e.g. "@nomyo/native not installed"). */
  reason: string;
  /** `process.platform`, where the addon runs. */
  platform?: string;
  /** RLIMIT_MEMLOCK in bytes, when known; Infinity when unlimited. */
  lockLimit?: number;
  /** Bytes this process has locked through the addon. */
  lockedBytes?: number;
  /** Of those, bytes kept locked and zeroed for reuse by later requests. */
  pooledBytes?: number;
  /**
   * Secrets since the process started that were held in memory the OS would not lock: RLIMIT_MEMLOCK
   * left their buffer no room (a large request's buffer is some 1.5 times its size). Each secure
   * allocation handed out unlocked counts once, whether its buffer was new or an unlocked one reused
   * (kept for reuse only while nothing can be locked at all). Their secrets were zeroed and
   * dump-excluded, not locked; `reason` says how large the largest buffer was. 0 when every one was locked.
   */
  unlockedAllocations?: number;
}

/** Memory for secrets: what the library asks of `@nomyo/native`, or of a custom `secureMemory` option. */
export interface SecureMemory {
  /** Which protection this is (cheap to read, unlike {@link info}). */
  readonly kind: MemoryProtectionInfo['kind'];
  /** Tries to keep `view`'s pages in RAM; false when the platform or its limit refuses. */
  lock(view: Uint8Array): boolean;
  /** Zeroes `view`, then releases its lock. */
  unlock(view: Uint8Array): void;
  /** Overwrites `view` with zeros in a way the compiler/JIT cannot remove. */
  zero(view: Uint8Array): void;
  /** A buffer for a secret of `size` bytes (locked and dump-excluded where possible). */
  alloc(size: number): Uint8Array<ArrayBuffer>;
  /** Releases a buffer from {@link alloc} (zeroed first). */
  free(view: Uint8Array): void;
  /** What this memory protects, and why (what `getMemoryProtection()` reports). */
  info(): MemoryProtectionInfo;
  /**
   * Optional, cheap to read: {@link MemoryProtectionInfo.unlockedAllocations} so far, which a client
   * watches to warn (`onWarning`) when a secret of one of its requests could not be locked: it must
   * grow at every {@link alloc} that hands out unlocked memory, a reused buffer too.
   */
  readonly unlockedAllocations?: number;
}
