import { describe, expect, it } from 'vitest';
import { canLock, isLinux, lockLimitPrefix, runFixture } from './helpers.mjs';

const MiB = 1024 * 1024;
// Expect locks to succeed only where the limit leaves room (see helpers).
const strict = await canLock(256 * 1024);

describe('in child processes', () => {
  it.runIf(strict)('finalizers release dropped allocations (GC loop keeps VmLck bounded)', () => {
    const r = runFixture('gc-loop.cjs', { nodeArgs: ['--expose-gc'] });
    expect(r.unlocked).toBe(0);
    expect(r.maxLocked).toBeLessThanOrEqual(r.lockLimit);
    expect(r.finalLocked).toBe(0);
    expect(r.lockedBytes).toBe(0);
  });

  const prefix = isLinux ? lockLimitPrefix(64 * 1024) : undefined;
  it.runIf(prefix)('degrades at a tiny RLIMIT_MEMLOCK: lock false, allocation unlocked, no crash', () => {
    const r = runFixture('limit.cjs', { prefix });
    expect(r.info.lockLimit).toBe(64 * 1024);
    expect(r.lockBig).toBe(false);
    expect(r.bigZeroed).toBe(true);
    expect(r).toMatchObject({ allocLocked: false, allocSecure: true, allocWritable: true, freed: true });
    expect(r.lengthAfterFree).toBe(0);
    expect(r.lockedAfter).toBe(0);
  });

  const zeroPrefix = isLinux ? lockLimitPrefix(0) : undefined;
  it.runIf(zeroPrefix)('reports locking unavailable at RLIMIT_MEMLOCK=0', () => {
    const r = runFixture('limit.cjs', { prefix: zeroPrefix });
    expect(r.info.locking).toBe(false);
    expect(r.info.lockLimit).toBe(0);
  });

  it('loads and works in worker threads; worker exit frees its allocations', () => {
    const r = runFixture('worker.cjs');
    // Each worker counts only its own allocation (its lock() was undone by unlock()).
    for (const w of r.workers) {
      expect(w.viewZeroed).toBe(true);
      expect(w.lockedBytes).toBe(w.locked ? w.mapped : 0);
      if (strict) expect(w).toMatchObject({ locked: true, viewLocked: true });
    }
    expect(r.mainLockedBytes).toBe(0);
    if (isLinux) expect(r.after).toBe(r.before);
  });

  it('import() of the package name gives named exports', () => {
    const r = runFixture('esm.mjs');
    expect(r.named).toEqual(['allocSecure', 'free', 'isLocked', 'isSecure', 'lock', 'protectionInfo', 'unlock', 'version', 'zero']);
    expect(r.freed).toBe(true);
    if (strict) expect(r.locked).toBe(true);
  });
});
