/**
 * What a finished request leaves reachable in the library: not its payload (the caller's messages),
 * even while the caller's signal lives on. A call's `over` signal aborted with a reason made per call,
 * whose captured stack held the call and its payload, through a listener on the caller's signal that
 * was never removed (found in a heap snapshot: the prompt reachable after the request and dispose).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/payload-released.mjs', import.meta.url));

describe("a finished request's payload", () => {
  let router: NomyoServer;
  beforeAll(async () => void (router = await startTestServer()));
  afterAll(() => router.close());

  it.each(['stream', 'whole'])('%s, with a signal that lives on: collected once the caller drops it', async (mode) => {
    const { stdout } = await run(process.execPath, ['--expose-gc', CLIENT, router.url, mode], { timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ collected: true, signalAlive: true });
  });
});
