/**
 * The router key's fetch, shared by a client's requests, is cancelled once no request waits for it
 * any more (each aborted, or timed out) and when the client is disposed: a process whose requests
 * gave up ends, instead of being held open by that fetch until the client's timeout (120 s here).
 */
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/gives-up-client.mjs', import.meta.url));

describe("a request that gives up while the router's key is fetched", () => {
  let silent: Server; // takes connections, never answers
  let url: string;
  beforeAll(async () => {
    silent = createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(() => silent.close());

  it.each([
    ['abort', 'APIUserAbortError'],
    ['timeout', 'APIConnectionTimeoutError'],
    ['nodispose', 'APIUserAbortError'],
  ])('%s: the process ends, not held open by the fetch until the client timeout', async (mode, error) => {
    // execFile's own timeout, far below the client's 120 s: a process held open fails the test.
    const { stdout } = await run(process.execPath, [CLIENT, url, mode], { timeout: 20_000 });
    expect(stdout).toBe(error);
  });
});
