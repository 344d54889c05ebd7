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
