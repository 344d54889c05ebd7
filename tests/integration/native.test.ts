/**
 * @nomyo/core with @nomyo/native, on whichever system runs the suite (Linux here and in .ci/run;
 * macOS and Windows in CI's addon jobs). What differs per system is checked against what that
 * system offers: how the addon locks (mlock, VirtualLock), zeroes and excludes from core dumps (Linux
 * only), the lock of a page as the addon reports it, and a request's plaintext held in locked memory.
 * The kernel's own count of locked memory (VmLck in /proc/self/status) is read on Linux only: macOS
 * and Windows have no /proc, and there the addon's count is what the test has.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getMemoryProtection } from '@nomyo/core';
import { allocSecure, free, isLocked, isSecure, protectionInfo, type ProtectionInfo } from '@nomyo/native';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/memory-client.mjs', import.meta.url));
const UNLOCKED_CLIENT = fileURLToPath(new URL('./fixtures/unlocked-client.mjs', import.meta.url));
const UNLOCKED_CLIENTS = fileURLToPath(new URL('./fixtures/unlocked-clients.mjs', import.meta.url));
const BROKEN_ADDON_CLIENT = fileURLToPath(new URL('./fixtures/broken-addon-client.mjs', import.meta.url));
const CORE_DIR = fileURLToPath(new URL('../../packages/core/', import.meta.url));
const NATIVE_DIR = fileURLToPath(new URL('../../native/', import.meta.url));

/**
 * A command prefix that runs a process under RLIMIT_MEMLOCK `bytes` (Linux): root's CAP_IPC_LOCK
 * ignores the limit, so it is dropped (setpriv); undefined where that cannot be done.
 */
function underLockLimit(bytes: number): string[] | undefined {
  if (process.platform !== 'linux') return undefined;
  const capEff = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  const prefix = ['prlimit', `--memlock=${bytes}:${bytes}`];
  return capEff !== undefined && (BigInt(`0x${capEff}`) & (1n << 14n)) !== 0n ? [...prefix, 'setpriv', '--bounding-set=-ipc_lock', '--inh-caps=-ipc_lock', '--'] : prefix;
}

type Mechanisms = Pick<ProtectionInfo, 'lockMechanism' | 'dumpMechanism' | 'zeroMechanism'>;
/** What each system CI runs on offers, as the addon must report it (native/src/platform.cc). */
const OFFERED: Partial<Record<NodeJS.Platform, Mechanisms>> = {
  linux: { lockMechanism: 'mlock', dumpMechanism: 'MADV_DONTDUMP', zeroMechanism: 'explicit_bzero' },
  darwin: { lockMechanism: 'mlock', dumpMechanism: null, zeroMechanism: 'memset_s' },
  win32: { lockMechanism: 'VirtualLock', dumpMechanism: null, zeroMechanism: 'SecureZeroMemory' },
};

/**
 * The binary of the built addon with its ELF machine changed (x86-64 ↔ AArch64): a binary for another
 * architecture, as a wrong prebuild would be. Undefined where the binary is not ELF (macOS, Windows).
 */
function otherArchitecture(binary: Buffer): Buffer | undefined {
  if (binary.subarray(0, 4).toString('latin1') !== '\x7fELF') return undefined;
  const copy = Buffer.from(binary);
  copy.writeUInt16LE(copy.readUInt16LE(18) === 0x3e ? 0xb7 : 0x3e, 18);
  return copy;
}

/** The kernel's count of this process's locked memory, where a test can read it: Linux's /proc. */
function kernelLockedBytes(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  const kb = /VmLck:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

const PLAINTEXT_BYTES = 256 * 1024;

describe('@nomyo/core with the native addon', () => {
  let server: NomyoServer;
  let duringRequest: { lockedBytes: number; kernel: number | undefined } | undefined;
  beforeAll(async () => {
    server = await startTestServer({
      // Runs in this process while the client awaits the answer: the request plaintext is still held.
      model: async (request, ctx) => {
        duringRequest = { lockedBytes: protectionInfo().lockedBytes, kernel: kernelLockedBytes() };
        return (await import('@nomyo/server')).echoModel(request, ctx);
      },
    });
  });
  afterAll(() => server.close());

  it(`reports what ${process.platform} offers: how it locks, zeroes and keeps secrets out of core dumps`, async () => {
    const offered = OFFERED[process.platform];
    expect(offered, `a system CI does not run on: ${process.platform}`).toBeDefined();
    const info = protectionInfo();
    expect(info).toMatchObject({ platform: process.platform, ...offered, dumpExclusion: offered!.dumpMechanism !== null });
    // RLIMIT_MEMLOCK (Infinity when unlimited); on Windows the minimum working set, which bounds VirtualLock.
    expect(info.lockLimit === Infinity || (typeof info.lockLimit === 'number' && info.lockLimit >= 0)).toBe(true);
    const core = await getMemoryProtection();
    expect(core).toMatchObject({ kind: 'native', platform: process.platform, locking: info.locking, dumpExclusion: info.dumpExclusion });
    expect(core.reason).toContain(info.locking ? info.lockMechanism : 'no locking');
    expect(core.reason).toContain(info.dumpMechanism ?? 'no dump exclusion');
  });

  it('locks a page for a secret where the system allows it, counts it, and gives it back', () => {
    const { locking, lockedBytes: before, pageSize } = protectionInfo();
    const secret = allocSecure(32);
    try {
      expect(isSecure(secret)).toBe(true);
      expect(isLocked(secret)).toBe(locking);
      expect(protectionInfo().lockedBytes).toBe(before + (locking ? pageSize : 0));
      const kernel = kernelLockedBytes();
      if (locking && kernel !== undefined) expect(kernel).toBeGreaterThanOrEqual(pageSize);
    } finally {
      free(secret);
    }
    expect(protectionInfo().lockedBytes).toBe(before);
  });

  it('reports native protection and keeps the request plaintext in locked memory while it is held', async () => {
    const client = clientFor(server, { secureMemory: 'require-native' });
    const protection = await client.client.memoryProtection();
    expect(protection.kind).toBe('native');
    expect(protection.reason).toMatch(/@nomyo\/native/);
    const { lockedBytes: before, lockLimit = 0 } = protectionInfo();
    // Room for the plaintext and the pages around it under the system's limit (Windows: the minimum
    // working set, a few hundred KiB unless raised): then it must be locked; else core zeroes only.
    const fits = protection.locking && lockLimit - before >= 4 * PLAINTEXT_BYTES;
    expect(protection.locking || lockLimit === 0, 'locking works unless the system forbids it').toBe(true);
    const pooledBefore = protection.pooledBytes ?? 0;
    const content = 'p'.repeat(PLAINTEXT_BYTES);
    const answer = await client.create({ model: 'm', messages: [{ role: 'user', content }] });
    expect(answer.choices[0]!.message.content).toBe(`echo: ${content}`);
    if (fits) {
      expect(duringRequest!.lockedBytes - before).toBeGreaterThanOrEqual(PLAINTEXT_BYTES);
      if (duringRequest!.kernel !== undefined) expect(duringRequest!.kernel).toBeGreaterThanOrEqual(PLAINTEXT_BYTES);
    }
    // Everything locked for the request was released afterwards, except the zeroed buffers the
    // pool keeps (locked where it could be) for the next request: once the next request's K, made
    // after this one, is made and its buffer given back.
    const pooled = async () => ((await client.client.memoryProtection()).pooledBytes ?? 0) - pooledBefore;
    await vi.waitFor(async () => {
      const kept = protectionInfo().lockedBytes - before;
      if (fits) expect(kept).toBe(await pooled());
      else expect(kept).toBeLessThanOrEqual(await pooled());
    });
    expect(await pooled()).toBeGreaterThanOrEqual(PLAINTEXT_BYTES);
    const kept = protectionInfo().lockedBytes - before;
    // The next request reuses it: nothing more stays locked.
    await client.create({ model: 'm', messages: [{ role: 'user', content }] });
    await vi.waitFor(() => expect(protectionInfo().lockedBytes).toBe(before + kept));
  });

  const LIMIT = 256 * 1024;
  const limited = underLockLimit(LIMIT);
  it.runIf(limited)('a secret the lock limit leaves unlocked is told (onWarning, once) and reported; its buffer is not reused, so later secrets are locked', async () => {
    const [command, ...args] = [...limited!, process.execPath, UNLOCKED_CLIENT, server.url];
    const { stdout } = await run(command!, args);
    const result = JSON.parse(stdout) as { locked: number[]; warnings: string[]; protection: Awaited<ReturnType<typeof getMemoryProtection>> };
    // The 1 MiB request's buffer went over the limit: zeroed and dump-excluded, not locked.
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/^secureMemory: a secret's buffer of \d+ bytes could not be locked \(RLIMIT_MEMLOCK too low\)/);
    expect(result.protection.unlockedAllocations).toBeGreaterThanOrEqual(1);
    expect(result.protection.reason).toMatch(new RegExp(`secure allocations? \\(up to \\d+ bytes\\) not locked: RLIMIT_MEMLOCK ${LIMIT} bytes left no room`));
    // The small requests after it had their 20 KiB plaintexts in locked memory, not in the large
    // unlocked buffer kept for reuse.
    // (Sampled at each fetch: the router key's first, then the three requests'.)
    expect(result.locked).toHaveLength(4);
    expect(result.locked.slice(2).every((bytes) => bytes >= 20 * 1024)).toBe(true);
  });

  const nothingLockable = underLockLimit(0);
  it.runIf(nothingLockable)('with nothing lockable, every client whose secret is held unlocked is told (onWarning, once a client), its buffer new or reused, and each is counted', async () => {
    const [command, ...args] = [...nothingLockable!, process.execPath, UNLOCKED_CLIENTS, server.url];
    const { stdout } = await run(command!, args);
    const clients = JSON.parse(stdout) as { name: string; warnings: string[]; unlockedAllocations: number; pooledBytes: number; locking: boolean }[];
    expect(clients.map((c) => c.name)).toEqual(['A', 'B', 'C']);
    let counted = 0;
    for (const client of clients) {
      expect(client.locking).toBe(false);
      // B and C take the unlocked buffers A left in the pool (kept: no fresh one could be locked
      // either): told all the same, and counted.
      expect(client.pooledBytes).toBeGreaterThan(0);
      expect(client.warnings, client.name).toHaveLength(1);
      expect(client.warnings[0]).toMatch(/^secureMemory: a secret's buffer of \d+ bytes could not be locked \(RLIMIT_MEMLOCK too low\)/);
      // At least each request's plaintext, twice a client.
      expect(client.unlockedAllocations - counted, client.name).toBeGreaterThanOrEqual(2);
      counted = client.unlockedAllocations;
    }
  });

  describe('an addon that is installed but broken', () => {
    // A copy of core's build with a copy of the addon beside it, whose binary the tests replace.
    let dir: string;
    let coreEntry: string;
    let binaryPath: string;
    const built = readFileSync(createRequire(join(NATIVE_DIR, 'index.js'))('node-gyp-build').resolve(NATIVE_DIR) as string);
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'nomyo-broken-addon-'));
      const core = join(dir, 'node_modules', '@nomyo', 'core');
      cpSync(join(CORE_DIR, 'package.json'), join(core, 'package.json'));
      cpSync(join(CORE_DIR, 'dist'), join(core, 'dist'), { recursive: true });
      coreEntry = join(core, 'dist', 'index.js');
      const native = join(dir, 'node_modules', '@nomyo', 'native');
      for (const file of ['index.js', 'package.json']) cpSync(join(NATIVE_DIR, file), join(native, file));
      const gypBuild = createRequire(join(NATIVE_DIR, 'index.js')).resolve('node-gyp-build/package.json');
      cpSync(join(gypBuild, '..'), join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
      // node-gyp-build looks in build/Release first.
      mkdirSync(join(native, 'build', 'Release'), { recursive: true });
      binaryPath = join(native, 'build', 'Release', 'nomyo_native.node');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    type Result = { protection: Awaited<ReturnType<typeof getMemoryProtection>>; warnings: string[][]; requireNative: string };
    const runClients = async (): Promise<Result> => JSON.parse((await run(process.execPath, [BROKEN_ADDON_CLIENT, server.url, coreEntry], { env: { ...process.env, NOMYO_DISABLE_NATIVE: '' } })).stdout);

    it.each([
      ['empty', () => Buffer.alloc(0)],
      ['corrupt', () => Buffer.from('not a shared library\n'.repeat(64))],
      ['built for another architecture', () => otherArchitecture(built)],
    ])('%s: each client is told (onWarning, once a client) why, zeroing goes on, and require-native refuses', async (variant, binary) => {
      const bytes = binary();
      if (bytes === undefined) return; // not an ELF system: no other architecture to make here
      writeFileSync(binaryPath, bytes);
      const result = await runClients();
      expect(result.protection).toMatchObject({ kind: 'js', locking: false });
      expect(result.protection.reason).toMatch(/^zeroing only: @nomyo\/native failed to load \(@nomyo\/native: /);
      expect(result.warnings).toHaveLength(2);
      for (const warnings of result.warnings) {
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/^secureMemory: the native addon is installed but failed to load \(@nomyo\/native: .*nomyo_native\.node.*\): secrets are zeroed only, not locked or dump-excluded/);
      }
      expect(result.requireNative).toMatch(/^InvalidArgumentError: secureMemory: 'require-native' but the addon is unavailable: @nomyo\/native failed to load/);
      // glibc says a binary for another architecture is not there ("No such file or directory"):
      // the reason says it is, and what is wrong with it.
      if (variant === 'built for another architecture') {
        expect(result.protection.reason).not.toMatch(/No such file or directory/);
        expect(result.protection.reason).toMatch(/nomyo_native\.node: the file exists but could not be loaded \(built for another architecture, or corrupt\)/);
      }
    });

    it('an addon not installed is no warning: zeroing only, and why', async () => {
      rmSync(join(dir, 'node_modules', '@nomyo', 'native'), { recursive: true, force: true });
      const result = await runClients();
      expect(result.protection).toMatchObject({ kind: 'js', reason: 'zeroing only: @nomyo/native not installed' });
      expect(result.warnings).toEqual([[], []]);
      expect(result.requireNative).toMatch(/^InvalidArgumentError: .*@nomyo\/native not installed/);
    });
  });

  it('falls back to zeroing, and says why, when the addon is hidden', async () => {
    const { stdout } = await run(process.execPath, [CLIENT, server.url], { env: { ...process.env, NOMYO_DISABLE_NATIVE: '1' } });
    const result = JSON.parse(stdout);
    expect(result.protection).toMatchObject({ kind: 'js', locking: false, reason: 'zeroing only: disabled by NOMYO_DISABLE_NATIVE' });
    expect(result.content).toBe('echo: hi');
    expect(result.requireNative).toMatch(/^InvalidArgumentError: secureMemory: 'require-native' but the addon is unavailable/);
  });

  it('finds the addon in a fresh process without being told', async () => {
    const { stdout } = await run(process.execPath, [CLIENT, server.url], { env: { ...process.env, NOMYO_DISABLE_NATIVE: '' } });
    const result = JSON.parse(stdout);
    expect(result.protection.kind).toBe('native');
    expect(result.requireNative).toBe('ok');
  });
});
