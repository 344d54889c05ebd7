/**
 * A stream its caller drops without reading it to its end or aborting it is aborted once collected:
 * its connection closes, and a process that dropped it can end. Without that, the connection stayed
 * open for good (a body being read is not cancelled when its Response is collected, and the router
 * had written the whole answer into the socket's buffers), and held the process open.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NomyoServer } from '@nomyo/server';
import { startTestServer } from './support.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/drops-streams.mjs', import.meta.url));

describe('a stream dropped unread', () => {
  let router: NomyoServer;
  // One word every 10 ms: each answer streams for 4 s, so a connection still open is the client's doing.
  beforeAll(async () => void (router = await startTestServer({ echoDelayMs: 10 })));
  afterAll(() => router.close());

  it.each(['stream', 'iterator', 'readable'])('%s dropped: its connection closes once collected, and the process ends', async (mode) => {
    const { stdout } = await run(process.execPath, ['--expose-gc', CLIENT, router.url, mode], { timeout: 20_000 });
    const { dropped, open, after } = JSON.parse(stdout) as { dropped: number; open: number; after: number };
    expect(open).toBeGreaterThanOrEqual(dropped);
    expect(after).toBe(0);
  });

  it('a stream read by `for await` alone (the stream object itself unreachable) is read to its end, the collector running at every chunk', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', CLIENT, router.url, 'read'], { timeout: 20_000 });
    // A role chunk, the words (the echo model's answer: "Echo: " and the 40 words), a finish chunk.
    expect(JSON.parse(stdout)).toEqual({ chunks: expect.any(Number), finish: 'stop' });
    expect(JSON.parse(stdout).chunks).toBeGreaterThan(40);
  });
});
