/**
 * Downgrade protection across restarts: with `keyDir`, a router seen speaking protocol 2 is
 * remembered in known_routers.json, so a later client refuses a key response that no longer
 * advertises it (an intermediary stripping X-Nomyo-Protocol), until `nomyo keys trust` re-trusts it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecurityError } from '@nomyo/core';
import { importRsaPublicKey, pemToDer, sealPackage, serializePackage } from '@nomyo/core/protocol';
import type { NomyoServer } from '@nomyo/server';
import { routerBehindProxy } from '../integration/support.js';
import { CLI, clientFor, hello, secureRequests, withTempDir } from './support.js';

function nomyo(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

// One router, and a proxy in front of it whose hooks each test sets.
const started = routerBehindProxy();

describe('protocol 2 memory in known_routers.json', () => {

  const strip = (on: boolean) => {
    started.proxy.hooks = on ? { answer: (answer, request) => void (request.path === '/pki/public_key' && delete answer.headers['x-nomyo-protocol']) } : {};
  };
  // Each client is a new process's worth of state: only the key directory carries over.
  const client = (keyDir: string, protocol: 'auto' | 1 = 'auto') => clientFor({ url: started.proxy.url } as NomyoServer, { keyDir, protocol });
  const entry = (dir: string) => JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8')).routers[started.proxy.url];
  /** The keys of the router the file says advertised protocol 2. */
  const spokeV2 = (dir: string) => Object.keys(JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8')).spokeV2?.[started.proxy.url] ?? {});

  it('refuses a downgrade after a restart, until the router is re-trusted; protocol: 1 accepts it meanwhile', () =>
    withTempDir(async (dir) => {
      strip(false);
      expect((await client(dir).create(hello))._metadata.protocol).toBe(2);
      expect(entry(dir)).toMatchObject({ fingerprint: started.router.fingerprint });
      expect(spokeV2(dir)).toEqual([started.router.fingerprint]);

      strip(true);
      started.router.clearRequests();
      const err = (await client(dir).create(hello).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(SecurityError);
      expect(err.message).toContain(join(dir, 'known_routers.json'));
      expect(err.message).toContain(`nomyo keys trust --url ${started.proxy.url} --allow-http --allow-v1\` and the same --dir`);
      expect(err.message).toContain('protocol: 1');
      expect(secureRequests(started.router)).toEqual([]);

      expect((await client(dir, 1).create(hello))._metadata.protocol).toBe(1);

      // Re-trusting is no way around it: a proxy stripping the header would make it forget v2.
      const stripped = await nomyo(['keys', 'trust', '--url', started.proxy.url, '--dir', dir, '--allow-http']);
      expect(stripped.code).toBe(1);
      expect(stripped.stderr).toMatch(/spoke protocol 2 before .*nothing was stored.*--allow-v1/);
      expect(spokeV2(dir)).toEqual([started.router.fingerprint]);
      // With --allow-v1 (its operator turned v2 off), it records what the router advertises now.
      const trusted = await nomyo(['keys', 'trust', '--url', started.proxy.url, '--dir', dir, '--allow-http', '--allow-v1']);
      expect(trusted.code).toBe(0);
      expect(trusted.stderr).toMatch(/protocol 2 not advertised \(v1 only; that it spoke 2 before is forgotten\)/);
      expect(spokeV2(dir)).toEqual([]);
      expect((await client(dir).create(hello))._metadata.protocol).toBe(1);

      // And once it speaks v2 again, that is remembered again.
      strip(false);
      expect((await client(dir).create(hello))._metadata.protocol).toBe(2);
      expect(spokeV2(dir)).toEqual([started.router.fingerprint]);
      const again = await nomyo(['keys', 'trust', '--url', started.proxy.url, '--dir', dir, '--allow-http']);
      expect(again.stderr).toMatch(/protocol 2 advertised/);
      expect(spokeV2(dir)).toEqual([started.router.fingerprint]);
    }));
});

/**
 * Every way a client can come to trust a router's key, with and without a key directory, within a
 * client's life and after a restart (a new client: only the key directory carries over). A proxy
 * strips X-Nomyo-Protocol from the key response and, should a v1 request come, forges its answer to the
 * X-Public-Key it saw: a tool call. Where the client can know that the router spoke v2, it refuses
 * before sending anything. Where it cannot (no key directory, and a restart), that is documented
 * (SECURITY.md, "Implementation status": a stripped X-Nomyo-Protocol on first contact), with the
 * remedy: `protocol: 2`, which refuses in every row.
 */
describe('downgrade refusal: pinned or trusted on first use, with or without keyDir, across restarts', () => {
  let forged = 0;

  const FORGED = {
    id: 'forged',
    object: 'chat.completion',
    created: 1,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'transfer_funds', arguments: '{}' } }] }, finish_reason: 'tool_calls' }],
  };
  function attack(on: boolean): void {
    forged = 0;
    started.router.clearRequests();
    started.proxy.hooks = on
      ? {
          answer: async (answer, request) => {
            if (request.path === '/pki/public_key') delete answer.headers['x-nomyo-protocol'];
            const sealedTo = request.headers['x-public-key'];
            if (request.method !== 'POST' || typeof sealedTo !== 'string') return;
            forged++;
            const clientKey = await importRsaPublicKey(pemToDer(decodeURIComponent(sealedTo), 'PUBLIC KEY'));
            answer.status = 200;
            answer.body = Buffer.from(serializePackage(await sealPackage(new TextEncoder().encode(JSON.stringify(FORGED)), clientKey)));
          },
        }
      : {};
  }
  // A TTL of 1 ms: every request fetches the router's key again, which is where a downgrade is refused.
  const client = (pin: boolean, keyDir: string | undefined, protocol: 'auto' | 2 = 'auto') =>
    clientFor({ url: started.proxy.url } as NomyoServer, {
      protocol,
      serverKeyTtl: 1,
      ...(pin ? { serverKeyFingerprint: started.router.fingerprint } : {}),
      ...(keyDir ? { keyDir } : {}),
    });
  const refusedUnsent = (outcome: unknown) => {
    expect(outcome).toBeInstanceOf(SecurityError);
    expect((outcome as Error).message).toMatch(/downgrade/);
    expect(secureRequests(started.router)).toEqual([]);
    expect(forged).toBe(0);
  };

  it.each([
    ['pinned, with keyDir', true, true],
    ['trusted on first use, with keyDir', false, true],
    ['pinned, no keyDir', true, false],
    ['neither pinned nor a keyDir', false, false],
  ])('%s', (_what, pin, withKeyDir) =>
    withTempDir(async (dir) => {
      const keyDir = withKeyDir ? dir : undefined;
      attack(false);
      const first = client(pin, keyDir);
      expect((await first.create(hello))._metadata.protocol).toBe(2);

      // Within the client's life: refused, whatever the configuration.
      attack(true);
      refusedUnsent(await first.create(hello).catch((e: unknown) => e));
      await first.dispose();

      // After a restart: refused where a key directory remembers it.
      attack(true);
      const restarted = client(pin, keyDir);
      const outcome = await restarted.create(hello).catch((e: unknown) => e);
      if (withKeyDir) {
        refusedUnsent(outcome);
        expect((outcome as Error).message).toContain(join(dir, 'known_routers.json'));
      } else {
        // Documented: nothing says this router ever spoke v2, so `auto` sends v1, whose answers a
        // proxy that sees X-Public-Key can forge (the v1 weakness).
        expect(outcome).toMatchObject({ id: 'forged', _metadata: { protocol: 1 } });
        expect(forged).toBe(1);
      }
      await restarted.dispose();

      // protocol: 2 refuses in every row, restarted or not.
      attack(true);
      const strict = client(pin, keyDir, 2);
      const refused = await strict.create(hello).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SecurityError);
      expect(secureRequests(started.router)).toEqual([]);
      await strict.dispose();
    }),
  );
});

/**
 * A key rotation (docs/deployment.md): the router's next key is new to every client, and a proxy
 * that strips X-Nomyo-Protocol from its first key response must not get v1 out of a client that saw
 * the router speak v2 with the old key: not within its life, not after a restart with its key
 * directory (pinned to both keys, as the rotation steps say), and not through `nomyo keys trust`.
 * Last in the file: the router keeps its new key.
 */
describe('a rotation keeps protocol 2', () => {
  const strip = (on: boolean) => {
    started.router.clearRequests();
    started.proxy.hooks = on ? { answer: (answer, request) => void (request.path === '/pki/public_key' && delete answer.headers['x-nomyo-protocol']) } : {};
  };
  const refusedUnsent = (outcome: unknown, fingerprint: string) => {
    expect(outcome).toBeInstanceOf(SecurityError);
    expect((outcome as Error).message).toMatch(/downgrade.*a new key does not reset this/);
    expect((outcome as Error).message).toContain(fingerprint);
    expect(secureRequests(started.router)).toEqual([]);
  };

  it("a new key stripped of X-Nomyo-Protocol is refused, in the client's life, after a restart, and by `nomyo keys trust`", () =>
    withTempDir(async (dir) => {
      strip(false);
      const old = started.router.fingerprint;
      // serverKeyTtl 1 ms: every request fetches the router's key.
      const live = clientFor({ url: started.proxy.url } as NomyoServer, { protocol: 'auto', serverKeyTtl: 1 });
      const keyed = clientFor({ url: started.proxy.url } as NomyoServer, { protocol: 'auto', keyDir: dir });
      expect((await live.create(hello))._metadata.protocol).toBe(2);
      expect((await keyed.create(hello))._metadata.protocol).toBe(2);
      await keyed.dispose();

      const { fingerprint: next } = await started.router.rotateKey();
      strip(true);
      refusedUnsent(await live.create(hello).catch((e: unknown) => e), next);
      await live.dispose();

      const pinned = clientFor({ url: started.proxy.url } as NomyoServer, { protocol: 'auto', keyDir: dir, serverKeyFingerprint: [old, next] });
      refusedUnsent(await pinned.create(hello).catch((e: unknown) => e), next);
      await pinned.dispose();

      const trusted = await nomyo(['keys', 'trust', '--url', started.proxy.url, '--dir', dir, '--allow-http']);
      expect(trusted.code).toBe(1);
      expect(JSON.parse(readFileSync(join(dir, 'known_routers.json'), 'utf8')).routers[started.proxy.url].fingerprint).toBe(old);

      // Unstripped, the new key is re-trusted, and the pinned client speaks v2 with it.
      strip(false);
      expect((await nomyo(['keys', 'trust', '--url', started.proxy.url, '--dir', dir, '--allow-http'])).code).toBe(0);
      const after = clientFor({ url: started.proxy.url } as NomyoServer, { protocol: 'auto', keyDir: dir });
      expect((await after.create(hello))._metadata.protocol).toBe(2);
      await after.dispose();
    }));
});
