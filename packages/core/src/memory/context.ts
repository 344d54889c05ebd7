/**
 * SecureByteContext: secure memory as a source of owned bytes (see owned-bytes.ts), for secrets: a
 * plaintext, a key, a password. With @nomyo/native they are locked and dump-excluded.
 */
import type { SecureMemory } from './secure-memory.js';
import { JsSecureMemory } from './js-memory.js';
import { head, owned, type ByteSource, type OwnedBytes } from './owned-bytes.js';

const encoder = new TextEncoder();

/**
 * Why a secret is held unlocked where its client expected it locked: the size in bytes of a buffer
 * the OS would not lock (RLIMIT_MEMLOCK), or `{ addonFailed }`, why an installed @nomyo/native would
 * not load (its load error's first line: a path and the loader's words, never a secret).
 */
export type UnlockedSecret = number | { addonFailed: string };

/** The `onWarning` of a client whose secret is held unlocked (see {@link UnlockedSecret}). */
export function unlockedWarning(why: UnlockedSecret): string {
  if (typeof why !== 'number') {
    return `secureMemory: the native addon is installed but failed to load (${why.addonFailed}): secrets are zeroed only, not locked or dump-excluded; reinstall @nomyo/native for this platform and architecture (NOMYO_DISABLE_NATIVE=1 chooses zeroing only without this warning)`;
  }
  return `secureMemory: a secret's buffer of ${why} bytes could not be locked (RLIMIT_MEMLOCK too low): it is zeroed (and dump-excluded where the platform can), not locked; raise the limit (ulimit -l) above what getMemoryProtection() reports`;
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
   * Bytes from `memory` (see `getMemoryProtection()` for what the runtime's gives). `onUnlocked` is
   * told, at every {@link take} that holds a secret unlocked, why: the buffer's size in bytes when
   * the memory's `unlockedAllocations` grew (a fresh buffer the OS would not lock, or an unlocked one
   * reused), or `{ addonFailed }` (the load error's first line, no secret in it) when an installed
   * but broken @nomyo/native left zeroing only. It is called for each such secret: a client tells
   * its `onWarning` once.
   */
  constructor(
    private readonly memory: SecureMemory,
    // Spelled out, not UnlockedSecret: that alias is not a public export.
    private readonly onUnlocked?: (why: number | { addonFailed: string }) => void,
  ) {}

  /** `size` bytes for a secret: locked, dump-excluded and pooled with @nomyo/native; pooled and zeroed without. */
  take(size: number): OwnedBytes {
    const before = this.onUnlocked && this.memory.unlockedAllocations;
    const bytes = this.memory.alloc(size);
    if (before !== undefined && this.memory.unlockedAllocations !== before) this.onUnlocked?.(size);
    else if (this.onUnlocked && this.memory instanceof JsSecureMemory && this.memory.addonFailure !== undefined) {
      // Whoever installed the addon expects locking; the load result alone (getMemoryProtection)
      // would leave them believing they have it.
      this.onUnlocked({ addonFailed: this.memory.addonFailure });
    }
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
