/**
 * SecureByteContext: secure memory as a source of owned bytes (see owned-bytes.ts), for secrets: a
 * plaintext, a key, a password. With @nomyo/native they are locked and dump-excluded.
 */
import type { SecureMemory } from './secure-memory.js';
import { head, owned, type ByteSource, type OwnedBytes } from './owned-bytes.js';

const encoder = new TextEncoder();

/** The `onWarning` of a client whose secret's buffer of `size` bytes the OS would not lock. */
export function unlockedWarning(size: number): string {
  return `secureMemory: a secret's buffer of ${size} bytes could not be locked (RLIMIT_MEMLOCK too low): it is zeroed (and dump-excluded where the platform can), not locked; raise the limit (ulimit -l) above what getMemoryProtection() reports`;
}

/**
 * Bytes for secrets from one SecureMemory: each is zeroed and given back (unlocked, freed) when
 * released. A failure while zeroing never hides the error the work threw.
 *
 * @example
 * const ctx = new SecureByteContext(memory);
 * await ctx.use(ctx.encodeUtf8(password), (bytes) => deriveKey(bytes));
 */
export class SecureByteContext implements ByteSource {
  /** Always true: what it gives may hold secrets, and is zeroed when released. */
  readonly secure = true;

  /**
   * Bytes from `memory` (see `getMemoryProtection()` for what the runtime's gives); `onUnlocked` is
   * told the size of a secret the OS would not lock (the memory's `unlockedAllocations` grew).
   */
  constructor(
    private readonly memory: SecureMemory,
    private readonly onUnlocked?: (size: number) => void,
  ) {}

  /** `size` bytes for a secret: locked, dump-excluded and pooled with @nomyo/native; pooled and zeroed without. */
  take(size: number): OwnedBytes {
    const before = this.onUnlocked && this.memory.unlockedAllocations;
    const bytes = this.memory.alloc(size);
    if (before !== undefined && this.memory.unlockedAllocations !== before) this.onUnlocked?.(size);
    return owned(bytes, true, () => this.memory.free(bytes));
  }

  /**
   * Bytes that were made elsewhere (Web Crypto's own result, say): locked while held where the memory
   * can, zeroed (and unlocked) when released.
   */
  adopt(bytes: Uint8Array<ArrayBuffer>): OwnedBytes {
    const locked = this.memory.lock(bytes);
    return owned(bytes, true, () => (locked ? this.memory.unlock(bytes) : this.memory.zero(bytes)));
  }

  /** The UTF-8 bytes of `text`, written straight into secure memory: the secret never sits in an ordinary buffer. */
  encodeUtf8(text: string): OwnedBytes {
    // Three bytes a UTF-16 unit at most: room enough, so no ordinary buffer ever holds the text.
    const taken = this.take(text.length * 3);
    return head(taken, encoder.encodeInto(text, taken.bytes).written);
  }

  /** `size` random bytes for a secret key (v2's `K`), written straight into secure memory. */
  randomBytes(size: number): OwnedBytes {
    const taken = this.take(size);
    globalThis.crypto.getRandomValues(taken.bytes);
    return taken;
  }

  /** Runs `fn` on `bytes`, then releases them, whatever happens; a failure to zero surfaces only when `fn` succeeded. */
  async use<T>(bytes: OwnedBytes, fn: (bytes: Uint8Array<ArrayBuffer>) => T | Promise<T>): Promise<T> {
    let failed = false;
    try {
      return await fn(bytes.bytes);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      try {
        bytes.release();
      } catch (zeroErr) {
        if (!failed) throw zeroErr;
      }
    }
  }
}
