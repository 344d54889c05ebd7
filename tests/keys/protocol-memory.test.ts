/**
 * Downgrade protection across restarts: with `keyDir`, a router seen speaking protocol 2 is
 * remembered in known_routers.json, so a later client refuses a key answer that no longer
 * advertises it (an intermediary stripping X-Nomyo-Protocol), until `nomyo keys trust` re-trusts it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecurityError } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { startProxy, type Proxy } from '../integration/proxy.js';
import { CLI, clientFor, hello, secureRequests, startTestServer, withTempDir } from './support.js';

function nomyo(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('protocol 2 memory in known_routers.json', () => {
  let router: NomyoServer;
  let proxy: Proxy;
  beforeAll(async () => {
    router = await startTestServer();
    proxy = await startProxy(router.url);
  });
  afterAll(async () => {
    await proxy.close();
    await router.close();
  });

  const strip = (on: boolean) => {
    proxy.hooks = on ? { answer: (answer, request) => void (request.path === '/pki/public_key' && delete answer.headers['x-nomyo-protocol']) } : {};
  };
  // Each client is a new process's worth of state: only the key directory carries over.
  const client = (keyDir: string, protocol: 'auto' | 1 = 'auto') => clientFor({ url: proxy.url } as NomyoServer, { keyDir, protocol });
  const entry = (dir: string) => JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8')).routers[proxy.url];

  it('refuses a downgrade after a restart, until the router is re-trusted; protocol: 1 accepts it meanwhile', () =>
    withTempDir(async (dir) => {
      strip(false);
      expect((await client(dir).create(hello))._metadata.protocol).toBe(2);
      expect(entry(dir)).toMatchObject({ fingerprint: router.fingerprint, v2Since: expect.any(String) });

      strip(true);
      router.clearRequests();
      const err = (await client(dir).create(hello).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(SecurityError);
      expect(err.message).toContain(join(dir, 'known_routers.json'));
      expect(err.message).toContain(`nomyo keys trust --url ${proxy.url}`);
      expect(err.message).toContain('protocol: 1');
      expect(secureRequests(router)).toEqual([]);

      expect((await client(dir, 1).create(hello))._metadata.protocol).toBe(1);

      // Re-trusting records what the router advertises now (no v2, behind this proxy).
      const trusted = await nomyo(['keys', 'trust', '--url', proxy.url, '--dir', dir, '--allow-http']);
      expect(trusted.code).toBe(0);
      expect(trusted.stderr).toMatch(/protocol 2 not advertised/);
      expect(entry(dir)).not.toHaveProperty('v2Since');
      expect((await client(dir).create(hello))._metadata.protocol).toBe(1);

      // And once it speaks v2 again, that is remembered again.
      strip(false);
      expect((await client(dir).create(hello))._metadata.protocol).toBe(2);
      expect(entry(dir)).toHaveProperty('v2Since');
      const again = await nomyo(['keys', 'trust', '--url', proxy.url, '--dir', dir, '--allow-http']);
      expect(again.stderr).toMatch(/protocol 2 advertised/);
      expect(entry(dir)).toHaveProperty('v2Since');
    }));
});
