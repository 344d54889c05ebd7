import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisposedError, KeyPasswordError, SecureCompletionClient } from '@nomyo/core';
import { HttpError, type NomyoServer } from '@nomyo/server';
import { CLI, clientFor, hello, routerWithHangingKeyRefresh, startTestServer, withTempDir } from './support.js';

const TESTS_DIR = fileURLToPath(new URL('..', import.meta.url));

/** Runs the CLI without blocking this process (the reference server answers from it). */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

describe('dispose', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('later calls give DisposedError; a second dispose is harmless; Symbol.asyncDispose disposes', async () => {
    const client = clientFor(server, { keyRotationInterval: 200 });
    await client.create(hello);
    await client.dispose();
    await client.dispose();
    await expect(client.create(hello)).rejects.toBeInstanceOf(DisposedError);
    await expect(client.client.keyPair()).rejects.toBeInstanceOf(DisposedError);
    await expect(client.client.generateKeys()).rejects.toBeInstanceOf(DisposedError);
    await expect(client.client.loadKeys('x')).rejects.toBeInstanceOf(DisposedError);
    // What `await using` calls (written out: Node 20 has the symbol but not the syntax).
    const low = new SecureCompletionClient({ routerUrl: server.url, allowHttp: true, keySize: 2048 });
    await low.sendSecureRequest(hello);
    await low[Symbol.asyncDispose]();
    await expect(low.sendSecureRequest(hello)).rejects.toBeInstanceOf(DisposedError);
  });

  it('a request under way starts no other attempt once its client is disposed: its retry and its key fetch end in DisposedError', async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    let asked = 0;
    const busy = await startTestServer({
      model: () => {
        asked++;
        throw new HttpError(503, 'the inference backend is busy');
      },
    });
    // Silent: takes the connection, never answers (the router key's fetch waits).
    const silent = createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const client = clientFor(busy, { maxRetries: 3 });
      const retried = client.create(hello).catch((e: unknown) => e);
      while (asked === 0) await sleep(5);
      await client.dispose();
      expect(await retried).toBeInstanceOf(DisposedError);
      // Its backoff (0.25-0.5 s, then 0.5-1 s) has passed: no attempt came after the dispose.
      await sleep(1_600);
      expect(asked).toBe(1);

      const waiting = new SecureCompletionClient({ routerUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, allowHttp: true, timeout: 5_000 });
      const outcome = waiting.sendSecureRequest(hello).catch((e: unknown) => e);
      await sleep(100);
      await waiting.dispose();
      expect(await outcome).toBeInstanceOf(DisposedError);
    } finally {
      silent.close();
      await busy.close();
    }
  });

  it("a request refreshing the router's key after a plain 400 when its client is disposed: DisposedError, and no attempt after it", async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const { router, keyFetches } = await routerWithHangingKeyRefresh();
    try {
      const client = clientFor(router, { protocol: 'auto', maxRetries: 2 });
      const outcome = client.create(hello).catch((e: unknown) => e);
      while (keyFetches() < 2) await sleep(5);
      await client.dispose();
      expect(await outcome).toBeInstanceOf(DisposedError);
      await sleep(200);
      expect(router.requests.filter((r) => r.path === '/v1/chat/secure_completion')).toHaveLength(1);
    } finally {
      await router.close();
    }
  });

  it.each([
    ['in flight', 300],
    ['in its backoff', 0],
  ])('a request whose 503 asks for a 20 s wait, disposed %s: DisposedError at once, not after the wait', async (_when, delayMs) => {
    let asked = 0;
    const router = await startTestServer({
      interceptor: (request) => {
        if (request.path !== '/v1/chat/secure_completion') return undefined;
        asked++;
        return { delayMs, status: 503, headers: { 'Retry-After': '20' } };
      },
    });
    try {
      const client = clientFor(router, { protocol: 'auto', maxRetries: 2 });
      const outcome = client.create(hello).catch((e: unknown) => e);
      while (asked === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // In flight: its answer comes 300 ms later. In its backoff: its answer has come (give it 200 ms).
      if (delayMs === 0) await new Promise((resolve) => setTimeout(resolve, 200));
      const disposedAt = Date.now();
      await client.dispose();
      const err = await outcome;
      expect(err).toBeInstanceOf(DisposedError);
      expect((err as Error).cause).toMatchObject({ status: 503 });
      expect(Date.now() - disposedAt).toBeLessThan(5_000); // the wait asked for is 20 s
      expect(asked).toBe(1);
    } finally {
      await router.close();
    }
  });

  it("an attempt that ends after the dispose keeps its own outcome (a router's 404), the dispose only stopping what would follow", async () => {
    let release!: () => void;
    const answered = new Promise<void>((resolve) => (release = resolve));
    const router = await startTestServer({
      interceptor: async (request) => {
        if (request.path !== '/v1/chat/secure_completion') return undefined;
        await answered;
        return { status: 404, body: { detail: 'no such model' } };
      },
    });
    try {
      const client = clientFor(router, { protocol: 'auto' });
      const outcome = client.create(hello).catch((e: unknown) => e);
      while (router.requests.filter((r) => r.path === '/v1/chat/secure_completion').length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      await client.dispose();
      release();
      expect(await outcome).toMatchObject({ name: 'APIError', status: 404, detail: 'no such model' });
    } finally {
      await router.close();
    }
  });

  it('a process with a client and rotation on, never disposed, exits on its own', async () => {
    const script = `
      import { SecureChatCompletion } from '@nomyo/core';
      const c = new SecureChatCompletion({ baseUrl: process.env.URL, allowHttp: true, keySize: 2048, keyRotationInterval: 60000 });
      await c.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      console.log('done');`;
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: TESTS_DIR, env: { ...process.env, URL: server.url } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => {
      const kill = setTimeout(() => child.kill(), 10_000);
      child.on('exit', (c) => (clearTimeout(kill), resolve(c)));
    });
    expect(out.trim()).toBe('done');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
  });
});

describe('nomyo keys', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it.each([
    [['keys', 'generate', '--dir', 'k', 'hunter2hunter2'], /an argument that is no option/],
    [['keys', 'generate', '--password=hunter2hunter2'], /an unknown option/],
    [['keys', 'change-password', '--password-env'], /an option without its value/],
    [['keys', 'fingerprint', '--fingerprint', 'hunter2hunter2'], /--fingerprint is for trust only/],
  ])('bad arguments %j: a usage error (status 2) that does not repeat them, for they may be a password', async (args, kind) => {
    const { status, stdout, stderr } = await cli(args);
    expect(status).toBe(2);
    expect(stderr).toMatch(kind);
    expect(stderr).toMatch(/^usage: nomyo keys generate/m);
    expect(stdout + stderr).not.toContain('hunter2');
  });

  it('an environment variable that is not set is not named: a password typed in its place stays off the terminal', () =>
    withTempDir(async (tmp) => {
      for (const flag of ['--password-env', '--new-password-env']) {
        const args = flag === '--password-env' ? ['keys', 'generate', '--dir', join(tmp, 'k'), '--size', '2048', flag, 'hunter2hunter2'] : ['keys', 'change-password', '--dir', join(tmp, 'k'), flag, 'hunter2hunter2'];
        if (flag === '--new-password-env') expect((await cli(['keys', 'generate', '--dir', join(tmp, 'k'), '--size', '2048', '--no-password'])).status).toBe(0);
        const { status, stdout, stderr } = await cli(args);
        expect(status).toBe(1);
        expect(stderr).toContain(`the environment variable named by ${flag} is not set`);
        expect(stdout + stderr).not.toContain('hunter2');
      }
    }));

  it('generate, fingerprint and change-password, with passwords from the environment only', () =>
    withTempDir(async (tmp) => {
      const dir = join(tmp, 'k');
      const gen = await cli(['keys', 'generate', '--dir', dir, '--size', '2048', '--password-env', 'OLD'], { OLD: 'first password' });
      expect(gen.status, gen.stderr).toBe(0);
      expect(statSync(join(dir, 'private_key.pem')).mode & 0o777).toBe(0o600);
      const [hex, b64] = gen.stdout.trim().split('\n');
      expect(hex).toMatch(/^[0-9a-f]{64}$/);
      expect(b64).toMatch(/^sha256:/);
      expect((await cli(['keys', 'fingerprint', '--dir', dir])).stdout).toBe(gen.stdout);
      expect((await cli(['keys', 'generate', '--dir', dir, '--no-password'])).status).toBe(1); // never overwrites

      const publicBefore = readFileSync(join(dir, 'public_key.pem'));
      const wrong = await cli(['keys', 'change-password', '--dir', dir, '--password-env', 'OLD', '--new-password-env', 'NEW'], { OLD: 'not it at all', NEW: 'second password' });
      expect(wrong.status).toBe(1);
      expect(wrong.stderr).toMatch(/KeyPasswordError/);
      const changed = await cli(['keys', 'change-password', '--dir', dir, '--password-env', 'OLD', '--new-password-env', 'NEW'], { OLD: 'first password', NEW: 'second password' });
      expect(changed.status, changed.stderr).toBe(0);
      expect(readFileSync(join(dir, 'public_key.pem')).equals(publicBefore)).toBe(true);
      const client = clientFor(server, { keyDir: dir, keyPassword: 'second password' });
      expect((await client.client.keyPair()).fingerprint).toBe(hex);
      await expect(clientFor(server, { keyDir: dir, keyPassword: 'first password' }).client.keyPair()).rejects.toBeInstanceOf(KeyPasswordError);

      // A key file that is a link, in a directory others may write: refused, as everywhere else, and left as it is.
      const linked = join(tmp, 'linked');
      mkdirSync(linked, { mode: 0o700 });
      symlinkSync(join(dir, 'private_key.pem'), join(linked, 'private_key.pem'));
      const viaLink = await cli(['keys', 'change-password', '--dir', linked, '--password-env', 'OLD', '--new-password-env', 'NEW'], { OLD: 'second password', NEW: 'third password' });
      expect(viaLink.status).toBe(1);
      expect(viaLink.stderr).toMatch(/KeyFileError/);
      expect(lstatSync(join(linked, 'private_key.pem')).isSymbolicLink()).toBe(true);
      chmodSync(dir, 0o777);
      const open = await cli(['keys', 'change-password', '--dir', dir, '--password-env', 'OLD', '--new-password-env', 'NEW'], { OLD: 'second password', NEW: 'third password' });
      chmodSync(dir, 0o700);
      expect(open.status).toBe(1);
      expect(open.stderr).toMatch(/writable by/);
      await clientFor(server, { keyDir: dir, keyPassword: 'second password' }).client.keyPair(); // unchanged

      // No terminal and no variable: a clear refusal, nothing written.
      const noTty = await cli(['keys', 'generate', '--dir', join(tmp, 'other'), '--size', '2048']);
      expect(noTty.status).toBe(1);
      expect(noTty.stderr).toMatch(/--password-env/);
    }));

  it('fingerprint --url prints the router key; trust --url accepts a changed key, with --fingerprint only the one published', () =>
    withTempDir(async (dir) => {
      const fp = await cli(['keys', 'fingerprint', '--url', server.url, '--allow-http']);
      expect(fp.status, fp.stderr).toBe(0);
      expect(fp.stdout.split('\n')[0]).toBe(server.fingerprint);
      await clientFor(server, { keyDir: dir }).create(hello);
      await server.rotateKey();
      await expect(clientFor(server, { keyDir: dir }).create(hello)).rejects.toThrow(/changed its key/);
      // --fingerprint: only the key its operator published; another is refused, and nothing stored.
      const stored = readFileSync(join(dir, 'known_routers.json'), 'utf8');
      const refused = await cli(['keys', 'trust', '--url', server.url, '--allow-http', '--dir', dir, '--fingerprint', fp.stdout.split('\n')[0]!]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/SecurityError.*does not match serverKeyFingerprint/);
      expect(readFileSync(join(dir, 'known_routers.json'), 'utf8')).toBe(stored);
      const trusted = await cli(['keys', 'trust', '--url', server.url, '--allow-http', '--dir', dir, '--fingerprint', server.fingerprint]);
      expect(trusted.status, trusted.stderr).toBe(0);
      expect(trusted.stderr).toMatch(/replaces/);
      await clientFor(server, { keyDir: dir }).create(hello);
    }));
});
