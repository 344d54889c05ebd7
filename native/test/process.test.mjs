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

  const smallPrefix = isLinux ? lockLimitPrefix(32 * 1024) : undefined;
  it.runIf(smallPrefix)('a lock() refused part-way undoes the pages it had locked', () => {
    const r = runFixture('rollback.cjs', { prefix: smallPrefix });
    const one = { lockedBytes: 1, vmLck: 1 }; // pages
    expect(r.lockMiddle).toBe(true);
    expect(r.afterMiddle).toEqual(one);
    expect(r.lockBig).toBe(false);
    expect(r.afterBig).toEqual(one); // pages 0-1 were locked, then rolled back
    expect(r.afterUnlockBig).toEqual(one);
    expect(r.bigZeroed).toBe(true);
    expect(r.lockFirst).toBe(true);
    expect(r.afterFirst).toEqual({ lockedBytes: 2, vmLck: 2 });
    expect(r.final).toEqual({ lockedBytes: 0, vmLck: 0 });
  });

  it('loads and works in worker threads; lockedBytes counts every thread; worker exit frees', () => {
    const r = runFixture('worker.cjs');
    const mainBytes = r.mainLocked ? 3 * r.page : 0;
    expect(r.main).toBe(mainBytes);
    for (const w of r.workers) {
      expect(w.viewZeroed).toBe(true);
      const own = (w.locked ? w.mapped : 0) + (w.viewLocked ? 2 * r.page : 0);
      // The main thread's view, this worker's allocation and its view: one process-wide count.
      expect(w.during.lockedBytes).toBe(mainBytes + own);
      expect(w.after.lockedBytes).toBe(mainBytes + (w.locked ? w.mapped : 0));
      if (isLinux) {
        expect(w.during.vmLck).toBe(w.during.lockedBytes);
        expect(w.after.vmLck).toBe(w.after.lockedBytes);
      }
      if (strict) expect(w).toMatchObject({ locked: true, viewLocked: true });
    }
    if (strict) expect(r.mainLocked).toBe(true);
    expect(r.afterWorkers).toBe(mainBytes); // the workers' allocations went with them
    expect(r.final).toBe(0);
    if (isLinux) expect(r.vmLckAfter).toBe(0);
  });

  it.runIf(strict)('concurrent workers locking views on a shared page never unlock it early', () => {
    const r = runFixture('worker-race.cjs');
    expect(r.mainLocked).toBe(true);
    for (const w of r.workers) expect(w).toEqual({ refused: 0, dropped: 0 });
    expect(r.during).toEqual({ lockedBytes: r.page, vmLck: r.page });
    expect(r.final).toEqual({ lockedBytes: 0, vmLck: 0 });
  });

  it('import() of the package name gives named exports', () => {
    const r = runFixture('esm.mjs');
    expect(r.named).toEqual(['allocSecure', 'free', 'isLocked', 'isSecure', 'lock', 'protectionInfo', 'unlock', 'version', 'zero']);
    expect(r.freed).toBe(true);
    if (strict) expect(r.locked).toBe(true);
  });
});
