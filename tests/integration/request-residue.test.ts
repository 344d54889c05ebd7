/**
 * What a finished request leaves reachable in the library: not its payload (the caller's messages),
 * even while the caller's signal lives on. A call's `over` signal aborted with a reason made per call,
 * whose captured stack held the call and its payload, through a listener on the caller's signal that
 * was never removed (found in a heap snapshot: the prompt reachable after the request and dispose).
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { countInMemory } from '@nomyo/test-support/secrets';
import { startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/payload-released.mjs', import.meta.url));
const OPEN_AND_STOP = fileURLToPath(new URL('./fixtures/open-and-stop.mjs', import.meta.url));

describe("a finished request's payload", () => {
  let router: NomyoServer;
  beforeAll(async () => void (router = await startTestServer()));
  afterAll(() => router.close());

  it.each(['stream', 'whole'])('%s, with a signal that lives on: collected once the caller drops it', async (mode) => {
    const { stdout } = await run(process.execPath, ['--expose-gc', CLIENT, router.url, mode], { timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ collected: true, signalAlive: true });
  });
});

// node:crypto's update() copies its output out of a block one byte longer, which it frees unzeroed
// (crypto/gcm/node.ts): without overwriting it, a record's (300 bytes) or an answer's plaintext was
// found whole in freed memory at every size here.
describe.runIf(process.platform === 'linux')('a plaintext core opened and zeroed', () => {
  it.each([300, 40_000, 100_000])('of %i bytes: no copy left in freed memory', async (size) => {
    const child = spawn(process.execPath, [OPEN_AND_STOP, String(size)], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      await expect.poll(() => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.[0], { timeout: 10_000, interval: 20 }).toBe('T');
      const mark = `ZQX${child.pid}MARK`;
      expect(countInMemory(child.pid!, [Buffer.from(mark + mark)])).toEqual([0]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
