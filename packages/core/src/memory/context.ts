import type { SecureMemory } from './secure-memory.js';

/**
 * Scopes a secret buffer: locked while `fn` runs, zeroed and unlocked in `finally`.
 * A failure while zeroing never hides the error `fn` threw.
 *
 * @example
 * const ctx = new SecureByteContext(memory);
 * await ctx.use(plaintextBytes, (bytes) => sealPackage(bytes, serverKey));
 */
export class SecureByteContext {
  constructor(private readonly memory: SecureMemory) {}

  async use<T>(bytes: Uint8Array, fn: (bytes: Uint8Array) => T | Promise<T>): Promise<T> {
    const locked = this.memory.lock(bytes);
    let failed = false;
    try {
      return await fn(bytes);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      try {
        if (locked) this.memory.unlock(bytes);
        else this.memory.zero(bytes);
      } catch (zeroErr) {
        // Only surface the zeroing failure when it is the sole failure.
        if (!failed) throw zeroErr;
      }
    }
  }
}
