/** Finds @nomyo/native at first use (never at import time) and adapts it to SecureMemory. */
import { env } from '../env.js';
import type { MemoryProtectionInfo, SecureMemory } from './secure-memory.js';
import { PooledMemory } from './pooled-memory.js';

export interface NativeLoadResult {
  memory?: SecureMemory;
  reason: string;
  /**
   * Set when an addon is installed but would not load (a corrupt or empty binary, one built for
   * another architecture): what failed, for the client's `onWarning`. Absent when it is simply not
   * installed (browsers, a plain install) or the runtime does not permit it (Deno's least privilege).
   */
  failure?: string;
}

/** The part of @nomyo/native this file uses (kept local: core has no dependency on it). */
interface NativeAddon {
  version: string;
  lock(view: Uint8Array): boolean;
  unlock(view: Uint8Array): void;
  zero(view: Uint8Array): void;
  allocSecure(size: number): Uint8Array<ArrayBuffer>;
  free(view: Uint8Array): boolean;
  /** Whether a secure allocation got its lock (absent from builds before it). */
  isLocked?(view: Uint8Array): boolean;
  protectionInfo(): {
    platform: string;
    locking: boolean;
    lockLimit?: number;
    lockedBytes: number;
    dumpExclusion: boolean;
    lockMechanism: string;
    dumpMechanism: string | null;
  };
}

// The scoped name first, then the unscoped one a private mirror might publish.
const CANDIDATES = ['@nomyo/native', 'nomyo-native'];

class NativeSecureMemory implements SecureMemory {
  readonly kind = 'native';
  readonly #pool: PooledMemory;
  /**
   * Backings the OS would not lock (RLIMIT_MEMLOCK), while they live: keyed by ArrayBuffer, as each
   * allocSecure has its own and every view the pool hands out of it shares it.
   */
  readonly #unlocked = new WeakSet<ArrayBufferLike>();
  #unlockedAllocations = 0;
  #largestUnlocked = 0;

  constructor(
    private readonly addon: NativeAddon,
    private readonly name: string,
  ) {
    this.#pool = new PooledMemory({
      allocate: (size) => this.#allocate(size),
      release: (buffer) => void addon.free(buffer),
      zero: (view) => addon.zero(view),
      // An unlocked buffer kept for reuse would hold later requests' secrets unlocked too, even small
      // ones a fresh allocation could lock: it goes back, unless nothing can be locked now anyway.
      reusable: (buffer) => !this.#unlocked.has(buffer.buffer) || !addon.protectionInfo().locking,
    });
  }

  get unlockedAllocations(): number {
    return this.#unlockedAllocations;
  }

  #allocate(size: number): Uint8Array<ArrayBuffer> {
    let buffer: Uint8Array<ArrayBuffer>;
    try {
      buffer = this.addon.allocSecure(size);
    } catch {
      // Electron refuses external buffers: an ordinary buffer, still zeroed after use (no lock limit
      // is to blame, and a fresh one would be no better: kept for reuse as before).
      return new Uint8Array(size);
    }
    if (this.addon.isLocked?.(buffer) === false) this.#unlocked.add(buffer.buffer);
    return buffer;
  }
  lock(view: Uint8Array): boolean {
    return this.addon.lock(view);
  }
  unlock(view: Uint8Array): void {
    this.addon.unlock(view);
  }
  zero(view: Uint8Array): void {
    this.addon.zero(view);
  }
  alloc(size: number): Uint8Array<ArrayBuffer> {
    const view = this.#pool.alloc(size);
    // Counted at every hand-out, not only when fresh: an unlocked buffer reused from the pool (kept
    // while nothing can be locked) holds this secret unlocked too, and a client watches the count to
    // warn (SecureByteContext.take).
    if (this.#unlocked.has(view.buffer)) {
      this.#unlockedAllocations++;
      this.#largestUnlocked = Math.max(this.#largestUnlocked, view.buffer.byteLength);
    }
    return view;
  }
  free(view: Uint8Array): void {
    this.#pool.free(view);
  }
  info(): MemoryProtectionInfo {
    const p = this.addon.protectionInfo();
    const how = [p.locking ? p.lockMechanism : 'no locking', p.dumpMechanism ?? 'no dump exclusion'].join(', ');
    const unlocked = this.#unlockedAllocations === 0 ? '' : `; ${unlockedText(this.#unlockedAllocations, this.#largestUnlocked, p.lockLimit)}`;
    return {
      kind: 'native',
      locking: p.locking,
      dumpExclusion: p.dumpExclusion,
      reason: `${this.name} ${this.addon.version} (${how}${unlocked})`,
      platform: p.platform,
      ...(p.lockLimit === undefined ? {} : { lockLimit: p.lockLimit }),
      lockedBytes: p.lockedBytes,
      pooledBytes: this.#pool.idleBytes,
      unlockedAllocations: this.#unlockedAllocations,
    };
  }
}

/** What the report says of allocations the OS would not lock. */
function unlockedText(count: number, largest: number, limit: number | undefined): string {
  const bound = limit === undefined ? 'the lock limit' : `RLIMIT_MEMLOCK ${limit === Infinity ? 'unlimited' : `${limit} bytes`}`;
  return `${count} secure allocation${count === 1 ? '' : 's'} (up to ${largest} bytes) not locked: ${bound} left no room`;
}

/**
 * The first line of why an addon failed to load. glibc's dlopen says "No such file or directory" of a
 * binary built for another architecture, which misleads when the file is there: then it says so.
 * @internal
 */
export function loadFailureText(err: unknown): string {
  const text = String((err as Error | undefined)?.message).split('\n')[0]!;
  const path = /^(.+): cannot open shared object file: No such file or directory$/.exec(text)?.[1];
  // node:fs only through getBuiltinModule (Node.js 20.16+, Bun, Deno 2): a static import would reach
  // browser bundles. Without it the text stays as it was.
  const builtin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const fs = path === undefined ? undefined : (builtin?.('node:fs') as { existsSync(path: string): boolean } | undefined);
  if (path === undefined || !fs?.existsSync(path)) return text;
  return `${path}: the file exists but could not be loaded (built for another architecture, or corrupt)`;
}

/** Why an import of the addon failed: not there, not allowed by the runtime, or broken. @internal */
export function classifyLoadError(err: unknown, name: string): 'missing' | 'denied' | 'failed' {
  const { code, name: errorName, message } = (err ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  const text = String(message);
  // Installed, but this process may not load it: Deno without --allow-read / --allow-ffi, or
  // Node's permission model without --allow-addons.
  if (errorName === 'NotCapable' || errorName === 'PermissionDenied' || /^Requires \w+ access to /.test(text)) return 'denied';
  if (code === 'ERR_DLOPEN_DISABLED' || code === 'ERR_ACCESS_DENIED') return 'denied';
  // Only the package itself being absent counts as missing, never a dependency of it: Node says
  // "Cannot find package '<name>'", Deno 'Import "<name>" not a dependency', workerd 'No such module "<name>".'.
  const named = text.includes(`'${name}'`) || text.includes(`"${name}"`);
  const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || text.startsWith('No such module');
  return named && notFound ? 'missing' : 'failed';
}

async function load(): Promise<NativeLoadResult> {
  // Feature detection, not platform sniffing: browsers and edge runtimes have no process.versions.node.
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) return { reason: 'not Node.js' };
  if (env('NOMYO_DISABLE_NATIVE') === '1') return { reason: 'disabled by NOMYO_DISABLE_NATIVE' };
  const failures: string[] = [];
  const denials: string[] = [];
  for (const name of CANDIDATES) {
    try {
      // A variable specifier keeps bundlers from trying to resolve the addon.
      const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as Partial<NativeAddon> & {
        default?: NativeAddon;
      };
      const addon = typeof mod.lock === 'function' ? (mod as NativeAddon) : mod.default;
      if (addon && typeof addon.allocSecure === 'function') return { memory: new NativeSecureMemory(addon, name), reason: name };
      failures.push(`${name}: unexpected exports`);
    } catch (err) {
      const kind = classifyLoadError(err, name);
      // The first line only: Node and Deno append require stacks and source positions.
      if (kind !== 'missing') (kind === 'denied' ? denials : failures).push(`${name}: ${loadFailureText(err)}`);
    }
  }
  if (failures.length) return { reason: `@nomyo/native failed to load (${failures.join('; ')})`, failure: failures.join('; ') };
  if (denials.length) return { reason: `@nomyo/native not permitted (${denials.join('; ')})` };
  return { reason: '@nomyo/native not installed' };
}

let cached: Promise<NativeLoadResult> | undefined;

export function loadNativeMemory(): Promise<NativeLoadResult> {
  cached ??= load();
  return cached;
}

/** Forgets the cached result so tests can load again under another environment. @internal */
export function resetNativeMemoryForTests(): void {
  cached = undefined;
}
