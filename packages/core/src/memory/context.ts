import type { SecureMemory } from './secure-memory.js';
import { NodeBuffer } from '../node-buffer.js';

const encoder = new TextEncoder();
/** Buffers that came from SecureMemory.alloc (or views of one, see `head`), each to what free() takes. */
const allocated = new WeakMap<Uint8Array, Uint8Array>();

/**
 * Scopes a secret buffer: locked while `fn` runs, zeroed and unlocked (or freed) in `finally`.
 * A failure while zeroing never hides the error `fn` threw.
 *
 * @example
 * const ctx = new SecureByteContext(memory);
 * await ctx.use(ctx.encodeUtf8(JSON.stringify(payload)), (bytes) => sealPackage(bytes, serverKey));
 */
export class SecureByteContext {
  constructor(private readonly memory: SecureMemory) {}

  /**
   * The UTF-8 bytes of `text`. With the native addon they are written straight into a locked,
   * dump-excluded allocation outside the JS heap, so the secret never sits in an ordinary buffer.
   */
  encodeUtf8(text: string): Uint8Array<ArrayBuffer> {
    if (this.memory.kind !== 'native' || !NodeBuffer) return encoder.encode(text);
    const bytes = this.memory.alloc(NodeBuffer.byteLength(text, 'utf8'));
    encoder.encodeInto(text, bytes);
    allocated.set(bytes, bytes);
    return bytes;
  }

  /**
   * `size` bytes for a secret (a plaintext) from this context's memory: locked, dump-excluded and
   * pooled with the native addon, pooled and zeroed without. Release them with this context.
   */
  alloc(size: number): Uint8Array<ArrayBuffer> {
    const bytes = this.memory.alloc(size);
    allocated.set(bytes, bytes);
    return bytes;
  }

  /** The first `length` bytes of `allocation` (from {@link alloc}); releasing them releases all of it. */
  head(allocation: Uint8Array<ArrayBuffer>, length: number): Uint8Array<ArrayBuffer> {
    return length === allocation.length ? allocation : this.view(allocation, 0, length);
  }

  /**
   * Bytes [start, start + length) of `allocation` (from {@link alloc}, or a view from here), in its
   * place: releasing them releases all of it, and `allocation` is no longer to be released itself.
   */
  view(allocation: Uint8Array<ArrayBuffer>, start: number, length: number): Uint8Array<ArrayBuffer> {
    const whole = allocated.get(allocation);
    if (!whole) throw new RangeError('not an allocation of this context');
    allocated.delete(allocation);
    const view = allocation.subarray(start, start + length);
    allocated.set(view, whole);
    return view;
  }

  /** The whole allocation behind `bytes` (from {@link alloc} or {@link view}) and where `bytes` starts in it. */
  placement(bytes: Uint8Array): { whole: Uint8Array; start: number } | undefined {
    const whole = allocated.get(bytes);
    return whole && { whole, start: bytes.byteOffset - whole.byteOffset };
  }

  /**
   * `size` random bytes for a secret key (v2's `K`): written straight into a locked, dump-excluded
   * allocation with the native addon, else into an ordinary buffer. Release them with this context
   * (`use` does), which zeroes them.
   */
  randomBytes(size: number): Uint8Array<ArrayBuffer> {
    const native = this.memory.kind === 'native';
    const bytes = native ? this.memory.alloc(size) : new Uint8Array(size);
    if (native) allocated.set(bytes, bytes);
    globalThis.crypto.getRandomValues(bytes);
    return bytes;
  }

  async use<T>(bytes: Uint8Array, fn: (bytes: Uint8Array) => T | Promise<T>): Promise<T> {
    const locked = !allocated.has(bytes) && this.memory.lock(bytes);
    let failed = false;
    try {
      return await fn(bytes);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      try {
        this.release(bytes, locked);
      } catch (zeroErr) {
        // Only surface the zeroing failure when it is the sole failure.
        if (!failed) throw zeroErr;
      }
    }
  }

  /** Zeroes `bytes` and gives back what holds them: frees an allocation, unlocks a locked view. */
  release(bytes: Uint8Array, locked = false): void {
    const whole = allocated.get(bytes);
    if (whole) {
      allocated.delete(bytes);
      this.memory.free(whole);
    } else if (locked) this.memory.unlock(bytes);
    else this.memory.zero(bytes);
  }
}
