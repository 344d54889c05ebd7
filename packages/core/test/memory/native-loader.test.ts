import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// @nomyo/native is a devDependency of core: the workspace build is linked and must load.
// Imported inside the tests so each one starts from a reset loader.
const loader = () => import('../../src/memory/native-loader.js');
const select = () => import('../../src/memory/select.js');

// Tests set the variable themselves; restore whatever the run was started with.
const startedWith = process.env.NOMYO_DISABLE_NATIVE;
beforeEach(() => {
  delete process.env.NOMYO_DISABLE_NATIVE;
});
afterEach(async () => {
  if (startedWith === undefined) delete process.env.NOMYO_DISABLE_NATIVE;
  else process.env.NOMYO_DISABLE_NATIVE = startedWith;
  (await loader()).resetNativeMemoryForTests();
});

describe('loadNativeMemory', () => {
  it('finds @nomyo/native and reports native protection', async () => {
    const { loadNativeMemory } = await loader();
    const { selectSecureMemory } = await select();
    const first = loadNativeMemory();
    expect(loadNativeMemory()).toBe(first); // cached
    const { memory, reason } = await first;
    expect(reason).toBe('@nomyo/native');
    expect(memory).toBeDefined();
    const info = memory!.info();
    expect(info.kind).toBe('native');
    expect(info.platform).toBe(process.platform);
    expect(info.reason).toMatch(/^@nomyo\/native \d+\.\d+\.\d+ \(/);
    if (process.platform === 'linux') {
      expect(info.dumpExclusion).toBe(true);
      if (info.locking) expect(info.reason).toContain('(mlock, MADV_DONTDUMP)');
    }

    const secret = memory!.alloc(64);
    expect(secret.length).toBe(64);
    secret.fill(0xee);
    const alias = new Uint8Array(secret.buffer);
    memory!.free(secret);
    // Pooled for the next secret: zeroed through every view, and handed out again.
    expect(alias.every((b) => b === 0)).toBe(true);
    expect(memory!.info().pooledBytes).toBeGreaterThanOrEqual(4096);
    const again = memory!.alloc(32);
    expect(again.buffer).toBe(secret.buffer);
    memory!.free(again);

    const plain = new Uint8Array([1, 2, 3]);
    const locked = memory!.lock(plain);
    if (locked) memory!.unlock(plain);
    else memory!.zero(plain);
    expect([...plain]).toEqual([0, 0, 0]);
    memory!.free(new Uint8Array(0));
    expect(memory!.alloc(0).length).toBe(0); // not a secure allocation: falls back

    expect((await selectSecureMemory('require-native')).info().kind).toBe('native');
  });

  it('NOMYO_DISABLE_NATIVE=1 hides the addon and selection falls back to zeroing', async () => {
    const { loadNativeMemory } = await loader();
    const { selectSecureMemory } = await select();
    process.env.NOMYO_DISABLE_NATIVE = '1';
    expect(await loadNativeMemory()).toEqual({ reason: 'disabled by NOMYO_DISABLE_NATIVE' });
    const memory = await selectSecureMemory(true);
    expect(memory.info()).toMatchObject({ kind: 'js', reason: 'zeroing only: disabled by NOMYO_DISABLE_NATIVE' });
    await expect(selectSecureMemory('require-native')).rejects.toThrow(/NOMYO_DISABLE_NATIVE/);
  });
});

describe('why the addon did not load', () => {
  // The errors each runtime really throws (captured from Node 20-24, Deno 2 and workerd).
  const error = (message: string, extra: { code?: string; name?: string } = {}) => Object.assign(new Error(message), extra);
  it.each([
    ['Node, not installed', error("Cannot find package '@nomyo/native' imported from /app/x.js", { code: 'ERR_MODULE_NOT_FOUND' }), 'missing'],
    ['Deno, not installed', error('Import "@nomyo/native" not a dependency', { code: 'ERR_MODULE_NOT_FOUND', name: 'TypeError' }), 'missing'],
    ['workerd, not in the bundle', error('No such module "@nomyo/native".'), 'missing'],
    ['Deno without --allow-ffi', error('Requires ffi access to "/app/nomyo_native.node", run again with the --allow-ffi flag', { name: 'NotCapable' }), 'denied'],
    ['Deno without --allow-read', error('Requires read access to "/app/index.js", run again with the --allow-read flag', { code: 'ERR_MODULE_NOT_FOUND', name: 'TypeError' }), 'denied'],
    ['Node --permission without --allow-addons', error('Cannot load native addon because loading addons is disabled.', { code: 'ERR_DLOPEN_DISABLED' }), 'denied'],
    ['a dependency of the addon missing', error("Cannot find module 'node-gyp-build'\nRequire stack:\n- /app/node_modules/@nomyo/native/index.js", { code: 'MODULE_NOT_FOUND' }), 'failed'],
    ['no build for this platform', error('No native build was found for platform=linux arch=riscv64'), 'failed'],
  ])('%s', async (_name, err, expected) => {
    const { classifyLoadError } = await loader();
    expect(classifyLoadError(err, '@nomyo/native')).toBe(expected);
  });
});

describe('why an installed addon did not load, in words that fit', () => {
  const require = createRequire(import.meta.url);
  const dlopenError = (path: string): unknown => {
    try {
      require(path);
    } catch (err) {
      return err;
    }
    throw new Error(`${path} loaded`);
  };

  // glibc's dlopen says "No such file or directory" of an ELF binary for another machine.
  it.runIf(process.platform === 'linux')('a binary for another architecture: the file exists but could not be loaded, not "no such file"', async () => {
    const { loadFailureText } = await loader();
    const nativeDir = dirname(require.resolve('@nomyo/native/package.json'));
    const built = readFileSync(createRequire(join(nativeDir, 'index.js'))('node-gyp-build').resolve(nativeDir) as string);
    const dir = mkdtempSync(join(tmpdir(), 'nomyo-arch-'));
    try {
      const path = join(dir, 'nomyo_native.node');
      const other = Buffer.from(built);
      other.writeUInt16LE(other.readUInt16LE(18) === 0x3e ? 0xb7 : 0x3e, 18); // e_machine: x86-64 <-> AArch64
      writeFileSync(path, other);
      expect(loadFailureText(dlopenError(path))).toBe(`${path}: the file exists but could not be loaded (built for another architecture, or corrupt)`);
      // A file that really is not there keeps the loader's own words.
      const gone = join(dir, 'gone.node');
      expect(loadFailureText(dlopenError(gone))).toBe(String((dlopenError(gone) as Error).message).split('\n')[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
