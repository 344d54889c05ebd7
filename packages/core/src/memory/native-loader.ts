/** Finds @nomyo/native at first use (never at import time) and adapts it to SecureMemory. */
import type { MemoryProtectionInfo, SecureMemory } from './secure-memory.js';
import { SecureBufferPool } from './secure-pool.js';

export interface NativeLoadResult {
  memory?: SecureMemory;
  reason: string;
}

/** The part of @nomyo/native this file uses (kept local: core has no dependency on it). */
interface NativeAddon {
  version: string;
  lock(view: Uint8Array): boolean;
  unlock(view: Uint8Array): void;
  zero(view: Uint8Array): void;
  allocSecure(size: number): Uint8Array<ArrayBuffer>;
  free(view: Uint8Array): boolean;
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
  readonly #pool: SecureBufferPool;
  constructor(
    private readonly addon: NativeAddon,
    private readonly name: string,
  ) {
    this.#pool = new SecureBufferPool({
      allocate: (size) => {
        try {
          return addon.allocSecure(size);
        } catch {
          // Electron refuses external buffers: an ordinary buffer, still zeroed after use.
          return new Uint8Array(size);
        }
      },
      release: (buffer) => void addon.free(buffer),
      zero: (view) => addon.zero(view),
    });
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
    return this.#pool.take(size);
  }
  free(view: Uint8Array): void {
    // A pooled view is zeroed and its buffer kept for reuse; any other view is only zeroed.
    if (!this.#pool.give(view)) this.addon.zero(view);
  }
  info(): MemoryProtectionInfo {
    const p = this.addon.protectionInfo();
    const how = [p.locking ? p.lockMechanism : 'no locking', p.dumpMechanism ?? 'no dump exclusion'].join(', ');
    return {
      kind: 'native',
      locking: p.locking,
      dumpExclusion: p.dumpExclusion,
      reason: `${this.name} ${this.addon.version} (${how})`,
      platform: p.platform,
      ...(p.lockLimit === undefined ? {} : { lockLimit: p.lockLimit }),
      lockedBytes: p.lockedBytes,
      pooledBytes: this.#pool.idleBytes,
    };
  }
}

async function load(): Promise<NativeLoadResult> {
  // Feature detection, not platform sniffing: browsers and edge runtimes have no process.versions.node.
  const proc = (globalThis as { process?: { versions?: { node?: string }; env?: Record<string, string | undefined> } })
    .process;
  if (!proc?.versions?.node) return { reason: 'not Node.js' };
  if (proc.env?.NOMYO_DISABLE_NATIVE === '1') return { reason: 'disabled by NOMYO_DISABLE_NATIVE' };
  const failures: string[] = [];
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
      const code = (err as { code?: string }).code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
      if (missing && String((err as Error).message).includes(`'${name}'`)) continue;
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  return { reason: failures.length ? `@nomyo/native failed to load (${failures.join('; ')})` : '@nomyo/native not installed' };
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
