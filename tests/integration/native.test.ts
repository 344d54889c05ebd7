import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protectionInfo } from '@nomyo/native';
import type { NomyoServer } from '@nomyo/server';
import { clientFor, startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/memory-client.mjs', import.meta.url));
/** The kernel's count of this process's locked memory; Linux only (macOS and Windows have no /proc): 0 elsewhere. */
const vmLck = () => (process.platform === 'linux' ? Number(/VmLck:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024 : 0);

describe('@nomyo/core with the native addon', () => {
  let server: NomyoServer;
  let duringRequest: { lockedBytes: number; vmLck: number } | undefined;
  beforeAll(async () => {
    server = await startTestServer({
      // Runs in this process while the client awaits the answer: the request plaintext is still held.
      model: async (request, ctx) => {
        duringRequest = { lockedBytes: protectionInfo().lockedBytes, vmLck: vmLck() };
        return (await import('@nomyo/server')).echoModel(request, ctx);
      },
    });
  });
  afterAll(() => server.close());

  it('reports native protection and keeps the request plaintext in locked memory while it is held', async () => {
    const client = clientFor(server, { secureMemory: 'require-native' });
    const protection = await client.client.memoryProtection();
    expect(protection.kind).toBe('native');
    expect(protection.reason).toMatch(/@nomyo\/native/);
    const before = protectionInfo().lockedBytes;
    const pooledBefore = protection.pooledBytes ?? 0;
    const content = 'p'.repeat(256 * 1024);
    const answer = await client.create({ model: 'm', messages: [{ role: 'user', content }] });
    expect(answer.choices[0]!.message.content).toBe(`echo: ${content}`);
    if (protection.locking) {
      expect(duringRequest!.lockedBytes - before).toBeGreaterThanOrEqual(256 * 1024);
      if (process.platform === 'linux') expect(duringRequest!.vmLck).toBeGreaterThanOrEqual(256 * 1024);
    }
    // Everything locked for the request was released afterwards, except the zeroed buffer the
    // pool keeps locked for the next request.
    const pooledAfter = (await client.client.memoryProtection()).pooledBytes ?? 0;
    expect(pooledAfter).toBeGreaterThanOrEqual(256 * 1024);
    expect(protectionInfo().lockedBytes).toBe(before + (pooledAfter - pooledBefore));
    // The next request reuses it: nothing more stays locked.
    await client.create({ model: 'm', messages: [{ role: 'user', content }] });
    expect(protectionInfo().lockedBytes).toBe(before + (pooledAfter - pooledBefore));
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
