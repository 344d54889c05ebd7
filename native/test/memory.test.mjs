import { describe, expect, it } from 'vitest';
import * as native from '../index.js';
import { canLock, isLinux, vmLck } from './helpers.mjs';

const { allocSecure, free, isLocked, isSecure, lock, protectionInfo, unlock, zero } = native;
const MiB = 1024 * 1024;
// Tests below lock at most ~1 MiB at a time; below that budget they only check consistency.
const strict = await canLock(2 * MiB);
const page = protectionInfo().pageSize;
const pagesCovering = (view) => Math.ceil(view.byteLength / page) * page;

describe('locking JS-owned buffers', () => {
  it.runIf(strict)('raises VmLck by the covered pages and drops it after unlock', () => {
    const before = vmLck();
    const buf = new Uint8Array(256 * 1024).fill(0xaa);
    expect(lock(buf)).toBe(true);
    const grown = vmLck() - before;
    // The view's pages, plus at most one partial page at each end.
    expect(grown).toBeGreaterThanOrEqual(pagesCovering(buf));
    expect(grown).toBeLessThanOrEqual(pagesCovering(buf) + 2 * page);
    expect(protectionInfo().lockedBytes).toBe(grown);
    unlock(buf);
    expect(vmLck()).toBe(before);
    expect(protectionInfo().lockedBytes).toBe(0);
    expect(buf.every((b) => b === 0)).toBe(true);
  });

  it('zero clears exactly the view, seen through a second view', () => {
    const backing = new ArrayBuffer(64);
    const all = new Uint8Array(backing).fill(0xff);
    zero(new Uint8Array(backing, 8, 16));
    zero(new DataView(backing, 40, 4));
    zero(new Float64Array(backing, 48, 1));
    const expected = new Uint8Array(64).fill(0xff);
    expected.fill(0, 8, 24).fill(0, 40, 44).fill(0, 48, 56);
    expect(all).toEqual(expected);
  });

  it('handles Buffer, SharedArrayBuffer views and empty views', () => {
    const b = Buffer.from('secret');
    const lockedB = lock(b);
    if (strict) expect(lockedB).toBe(true);
    unlock(b);
    expect(b.toString('hex')).toBe('000000000000');
    const shared = new Uint8Array(new SharedArrayBuffer(32)).fill(9);
    const lockedShared = lock(shared);
    if (strict) expect(lockedShared).toBe(true);
    unlock(shared);
    expect(shared.every((x) => x === 0)).toBe(true);
    expect(lock(new Uint8Array(0))).toBe(true);
    unlock(new Uint8Array(0));
    zero(new Uint8Array(0));
  });
});

describe('lock() counts references per page', () => {
  // WebAssembly memory starts on a page boundary, so these tests know which pages a view covers.
  const pages = (n) => new Uint8Array(new WebAssembly.Memory({ initial: Math.ceil((n * page) / 65536) }).buffer, 0, n * page);
  // What this addon holds, and (Linux) what the kernel says the process holds, in pages.
  let baseline;
  const start = () => {
    expect(protectionInfo().lockedBytes).toBe(0);
    baseline = vmLck();
  };
  const held = () => ({ lockedBytes: protectionInfo().lockedBytes / page, vmLck: (vmLck() - baseline) / page });
  const expectHeld = (n) => expect(held()).toEqual({ lockedBytes: n, vmLck: n });

  it.runIf(strict)('two views on one page: the page stays locked until both are unlocked', () => {
    start();
    const mem = pages(1).fill(0xaa);
    const a = mem.subarray(0, 16);
    const b = mem.subarray(100, 116);
    expect(lock(a)).toBe(true);
    expectHeld(1);
    expect(lock(b)).toBe(true);
    expectHeld(1); // one page, counted once
    unlock(a);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(b.every((x) => x === 0xaa)).toBe(true);
    expectHeld(1); // b still holds the page
    unlock(b);
    expectHeld(0);
  });

  it.runIf(strict)('views across page boundaries overlapping other locked views', () => {
    start();
    const mem = pages(4);
    const a = mem.subarray(page - 8, page + 8); // pages 0-1
    const b = mem.subarray(page + 100, 3 * page + 5); // pages 1-3
    const c = mem.subarray(2 * page, 3 * page); // page 2
    expect(lock(a)).toBe(true);
    expectHeld(2);
    expect(lock(b)).toBe(true);
    expectHeld(4);
    expect(lock(c)).toBe(true);
    expectHeld(4);
    unlock(a); // page 0 goes, page 1 stays for b
    expectHeld(3);
    unlock(b); // pages 1 and 3 go, page 2 stays for c
    expectHeld(1);
    unlock(c);
    expectHeld(0);
  });

  it.runIf(strict)('unlock() gives back only a lock() of the same bytes; otherwise it only zeroes', () => {
    start();
    const mem = pages(1).fill(1);
    const a = mem.subarray(0, 16);
    const never = mem.subarray(32, 48);
    expect(lock(a)).toBe(true);
    unlock(never); // never locked, same page: zeroed, a keeps its lock
    expect(never.every((x) => x === 0)).toBe(true);
    expectHeld(1);
    expect(lock(a)).toBe(true); // a second lock() of a
    unlock(a);
    expectHeld(1);
    unlock(a);
    expectHeld(0);
    unlock(a); // one unlock too many: no negative count
    expectHeld(0);
    expect(lock(never)).toBe(true);
    expectHeld(1);
    unlock(never);
    expectHeld(0);
    // Another view object on the same bytes gives the lock back.
    expect(lock(new DataView(mem.buffer, 200, 8))).toBe(true);
    expectHeld(1);
    unlock(mem.subarray(200, 208));
    expectHeld(0);
  });
});

describe('allocSecure', () => {
  it('returns zeroed, locked memory outside the heap that free() detaches', () => {
    const before = vmLck();
    const buf = allocSecure(MiB + 1);
    expect(buf.length).toBe(MiB + 1);
    expect(buf.byteOffset).toBe(0);
    expect(buf.every((b) => b === 0)).toBe(true);
    expect(isSecure(buf)).toBe(true);
    const locked = isLocked(buf);
    if (strict) expect(locked).toBe(true);
    const mapped = Math.ceil((MiB + 1) / page) * page;
    if (isLinux) expect(vmLck() - before).toBe(locked ? mapped : 0);
    expect(protectionInfo().lockedBytes).toBe(locked ? mapped : 0);

    const other = new Uint8Array(buf.buffer, 100, 10);
    expect(lock(other)).toBe(locked); // the allocation's own state: never counted twice
    expect(protectionInfo().lockedBytes).toBe(locked ? mapped : 0);

    buf.fill(0x5a);
    unlock(other); // zeroes, but the allocation keeps its lock until free
    expect(buf.subarray(100, 110).every((b) => b === 0)).toBe(true);
    expect(buf[99]).toBe(0x5a);
    expect(isLocked(buf)).toBe(locked);

    expect(free(buf)).toBe(true);
    expect(buf.length).toBe(0);
    expect(other.length).toBe(0);
    expect(buf.buffer.byteLength).toBe(0);
    expect(isSecure(buf)).toBe(false);
    if (isLinux) expect(vmLck()).toBe(before);
    expect(protectionInfo().lockedBytes).toBe(0);
    // A second free and calls on the detached view are harmless.
    expect(free(buf)).toBe(false);
    expect(lock(buf)).toBe(true);
    unlock(buf);
    zero(buf);
  });

  it('free() of a JS-owned view only zeroes it', () => {
    const backing = new Uint8Array(16).fill(3);
    expect(free(backing.subarray(4, 8))).toBe(false);
    expect([...backing]).toEqual([3, 3, 3, 3, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(isSecure(backing)).toBe(false);
    expect(isLocked(backing)).toBe(false);
  });

  it('reports what the platform offers', () => {
    const info = protectionInfo();
    expect(info.platform).toBe(process.platform);
    expect(typeof info.locking).toBe('boolean');
    expect(info.lockLimit === Infinity || info.lockLimit >= 0).toBe(true);
    if (isLinux) {
      expect(info).toMatchObject({ lockMechanism: 'mlock', dumpMechanism: 'MADV_DONTDUMP', dumpExclusion: true });
      expect(info.zeroMechanism).toBe('explicit_bzero');
    }
    expect(native.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('argument checks', () => {
  it.each([null, undefined, 1, 'abc', [1, 2], {}, new ArrayBuffer(8)])('TypeError for %o', (bad) => {
    for (const fn of [lock, unlock, zero, free, isLocked, isSecure]) expect(() => fn(bad)).toThrow(TypeError);
  });

  it('allocSecure: TypeError for non-numbers, RangeError for bad sizes', () => {
    for (const bad of ['16', null, undefined, 16n, {}]) expect(() => allocSecure(bad)).toThrow(TypeError);
    for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) expect(() => allocSecure(bad)).toThrow(RangeError);
  });
});
