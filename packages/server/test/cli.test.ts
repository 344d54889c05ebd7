/** The nomyo-server binary, built and spawned as users run it. */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { SecureCompletionClient } from '@nomyo/core';
import { HEADERS, PACKAGE_CONTENT_TYPE, PATHS } from '@nomyo/core/protocol';
import { VECTOR_KEY_FILE } from './helpers.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
let child: ChildProcessWithoutNullStreams | undefined;

// The binary runs from dist/, which the global setup (build-cli.ts) has built from the current source.
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

function firstLine(proc: ChildProcessWithoutNullStreams): Promise<string> {
  const lines = createInterface({ input: proc.stdout });
  return new Promise((resolve, reject) => {
    lines.once('line', (line) => {
      lines.close();
      resolve(line);
    });
    proc.once('exit', (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

describe('nomyo-server', () => {
  it('prints "listening on <URL>" first, serves, and stops cleanly on SIGTERM', async () => {
    child = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, '--quiet']);
    const line = await firstLine(child);
    expect(line).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
    const url = line.slice('listening on '.length);
    const res = await fetch(url + PATHS.publicKey);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });

  it('--tls-cert and --tls-key go together; an unreadable one exits 2 naming its flag (serving HTTPS: cli.production.test.ts)', () => {
    const alone = spawnSync(process.execPath, [cli, '--tls-cert', cli], { encoding: 'utf8' });
    expect(alone.status).toBe(2);
    expect(alone.stderr).toMatch(/^nomyo-server: --tls-cert and --tls-key go together/);
    const missing = spawnSync(process.execPath, [cli, '--tls-cert', cli, '--tls-key', `${cli}.gone`], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^nomyo-server: --tls-key: cannot read /);
  });

  it('--help prints usage and exits 0, --version the package\'s version; a bad option exits 2', () => {
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--upstream-key KEY/);
    const version = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' });
    expect([version.status, version.stdout]).toEqual([0, `${(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`]);
    const bad = spawnSync(process.execPath, [cli, '--port', 'eighty'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--port must be/);
    const unknown = spawnSync(process.execPath, [cli, '--frobnicate'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
  });

  it('advertises protocols "1, 2" by default; --protocol 1 is a v1-only router; anything else exits 2', async () => {
    for (const [args, advertised] of [[[], '1, 2'], [['--protocol', '1'], null]] as const) {
      child = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, '--quiet', ...args]);
      const url = (await firstLine(child)).slice('listening on '.length);
      expect((await fetch(url + PATHS.publicKey)).headers.get(HEADERS.protocol)).toBe(advertised);
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    const bad = spawnSync(process.execPath, [cli, '--protocol', '3'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--protocol must be 1 or 2/);
  });

  it('exits 1 with a message when the key file is unusable', () => {
    const res = spawnSync(process.execPath, [cli, '--key-file', cli], { encoding: 'utf8' });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/not an RSA private key/);
  });

  it('--accept-key-file, repeatable: says which other keys open requests; a missing one exits 2 naming its flag', async () => {
    const other = join(mkdtempSync(join(tmpdir(), 'nomyo-accept-')), 'old.pem');
    writeFileSync(other, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const { stderr } = await started(['--accept-key-file', other, '--accept-key-file', other]);
    await expect.poll(stderr).toMatch(/also accepts key SHA-256 [0-9a-f]{64} \(not served\)\n$/);
    expect(stderr().match(/also accepts/g)).toHaveLength(1);
    child!.kill('SIGTERM');
    const missing = spawnSync(process.execPath, [cli, '--key-file', VECTOR_KEY_FILE, '--accept-key-file', '/nonexistent/old.pem'], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^nomyo-server: --accept-key-file: cannot read \/nonexistent\/old\.pem: ENOENT\n/);
  });

  it('--echo-delay MS: the echo model streams its words MS apart', async () => {
    child = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, '--quiet', '--echo-delay', '80']);
    const url = (await firstLine(child)).slice('listening on '.length);
    const stream = await new SecureCompletionClient({ routerUrl: url, allowHttp: true }).streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'a b c d e' }] });
    const at: number[] = [];
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      at.push(performance.now());
    }
    expect(text).toBe('echo: a b c d e');
    expect(at.at(-1)! - at[0]!).toBeGreaterThan(5 * 80 * 0.6);
  });

  it('answers garbage, and a client that stops reading a stream, without growing its memory', async () => {
    child = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, '--quiet']);
    const url = (await firstLine(child)).slice('listening on '.length);
    const pid = child.pid!;
    // Resident memory of the router's process, in bytes (ps: Linux and macOS alike).
    const rss = () => Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) * 1024;
    const garbage1 = async () => {
      const body = crypto.getRandomValues(new Uint8Array(64 * 1024));
      const res = await fetch(url + PATHS.secureCompletion, { method: 'POST', headers: { [HEADERS.contentType]: PACKAGE_CONTENT_TYPE, [HEADERS.payloadId]: crypto.randomUUID() }, body });
      expect(res.status).toBe(400);
      await res.arrayBuffer();
    };
    // `n` garbage bodies of 64 KiB, four at a time.
    const garbage = (n: number) => Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < n / 4; i++) await garbage1();
    }));
    // The router's memory grows to its working size over some 1,300 requests (V8's heap, malloc's
    // arenas), then stays, give or take what the collector has not yet returned (up to 11 MiB seen
    // with the rest of the suite running): the 62.5 MiB of 1,000 bodies, or half of them, kept, would show.
    await garbage(1500);
    const warm = rss();
    await garbage(1000);
    expect(rss() - warm).toBeLessThan(24 * 1024 * 1024);
    // Not even HTTP: Node's parser answers 400 and closes.
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => socket.end('\x00\x01 not http at all\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    // A stream of 200,000 words nobody reads: the router waits for the socket, it does not queue them.
    const client = new SecureCompletionClient({ routerUrl: url, allowHttp: true });
    const before = rss();
    const stream = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'w '.repeat(200_000) }] });
    await new Promise((r) => setTimeout(r, 1500));
    const stalled = rss();
    await new Promise((r) => setTimeout(r, 1000));
    expect(rss() - stalled).toBeLessThan(4 * 1024 * 1024);
    expect(rss() - before).toBeLessThan(32 * 1024 * 1024);
    stream.controller.abort();
  });
});

/** Runs the binary to its exit: code and stderr. */
function exitOf(args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const res = spawnSync(process.execPath, [cli, '--key-file', VECTOR_KEY_FILE, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { status: res.status, stderr: res.stderr };
}

/** Starts the binary and resolves to its URL and its stderr so far, once its startup line is there. */
async function started(args: string[], env: Record<string, string> = {}): Promise<{ url: string; stderr: () => string }> {
  child = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, ...args], { env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const url = (await firstLine(child)).slice('listening on '.length);
  while (!stderr.includes('server key SHA-256')) await new Promise((r) => setTimeout(r, 20));
  return { url, stderr: () => stderr };
}

describe('nomyo-server: values the library refuses are usage errors that name the flag', () => {
  it.each<[string[], RegExp]>([
    [['--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['--body-limit', '0'], /--body-limit must be a positive integer/],
    [['--key-size', '1024'], /--key-size must be an integer >= 2048/],
    [['--echo-delay', '99999999999'], /--echo-delay must be an integer from 0 to 2147483647/],
    [['--max-concurrent', '99999999999999999999'], /--max-concurrent must be a positive integer/],
    [['--metrics-port', '70000'], /--metrics-port must be an integer from 0 to 65535/],
    [['--echo-delay', '10', '--upstream', 'http://127.0.0.1:9/v1'], /--echo-delay is for the echo model: give no --upstream with it/],
    [['--upstream', 'http://[bad/v1'], /--upstream must be an http\(s\) URL/],
    [['--upstream', 'ftp://x/v1'], /--upstream must be an http\(s\) URL/],
    [['--headers-timeout', '40', '--request-timeout', '30'], /--headers-timeout must not be above --request-timeout/],
    [['--api-key', ''], /--api-key must not be empty/],
    [['--api-key='], /--api-key must not be empty/],
    [['--upstream-key', 'sk-up'], /--upstream-key is for an --upstream: give --upstream with it/],
    [['--upstream', 'http://127.0.0.1:9/v1', '--upstream-key', ''], /--upstream-key must not be empty/],
    [['--key-file', tmpdir()], /--key-file: .+ is a directory/],
  ])('%j exits 2 with the usage', (args, message) => {
    const { status, stderr } = exitOf(args);
    expect(status).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('Usage: nomyo-server');
    expect(stderr).not.toMatch(/(?<![\w-])(port|bodyLimit|keySize|echoDelayMs|maxConcurrent|metricsPort|upstream|headersTimeoutMs|requestTimeoutMs|apiKey|upstreamKey) must\b/);
  });

  it('an empty NOMYO_SERVER_API_KEY is a usage error, as an empty --api-key is: never a router open to all', () => {
    const { status, stderr } = exitOf(['--port', '0'], { NOMYO_SERVER_API_KEY: '' });
    expect(status).toBe(2);
    expect(stderr).toContain('NOMYO_SERVER_API_KEY is empty: give the API key, or unset it for a router that needs none');
  });

  it('an empty NOMYO_UPSTREAM_KEY is a usage error for a router with an upstream (every request would fail with 502); the echo model ignores it', async () => {
    const { status, stderr } = exitOf(['--port', '0', '--upstream', 'http://127.0.0.1:9/v1'], { NOMYO_UPSTREAM_KEY: '' });
    expect(status).toBe(2);
    expect(stderr).toContain("NOMYO_UPSTREAM_KEY is empty: give the upstream's key, or unset it for an upstream that needs none");
    const echo = await started([], { NOMYO_UPSTREAM_KEY: 'sk-up' });
    expect(echo.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    child!.kill('SIGTERM');
  });

  it('refuses an --upstream with a user or password, without echoing it', () => {
    const { status, stderr } = exitOf(['--upstream', 'http://user:s3cr3t-pass@127.0.0.1:9/v1']);
    expect(status).toBe(2);
    expect(stderr).toMatch(/--upstream must not hold a user name or password.*--upstream-key/);
    expect(stderr).not.toContain('s3cr3t');
  });

  it('refuses an --upstream with a query or fragment (it would swallow /chat/completions, and may hold a key), without echoing it', () => {
    for (const upstream of ['http://127.0.0.1:9/v1?key=s3cr3t-key', 'http://127.0.0.1:9/v1#s3cr3t', 'http://127.0.0.1:9/v1?']) {
      const { status, stderr } = exitOf(['--upstream', upstream]);
      expect(status).toBe(2);
      expect(stderr).toMatch(/--upstream must not hold a query or fragment/);
      expect(stderr).not.toContain('s3cr3t');
    }
  });

  it('--request-timeout alone below 30 s: the headers timeout follows it', async () => {
    const { url } = await started(['--request-timeout', '10', '--quiet']);
    expect((await fetch(url + '/healthz')).status).toBe(200);
  });

  it('a positive number of seconds below 1 ms is 1 ms, never 0 ("off", or refused)', async () => {
    const { url } = await started(['--headers-timeout', '0.0004', '--upstream-timeout', '0.0001', '--stream-stall-timeout', '0.0004', '--quiet']);
    // Headers never finished: with a 1 ms headers timeout, 408 at the next check (50 ms); with it off, nothing for 300 s.
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    socket.on('error', () => {});
    const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))]);
    socket.destroy();
    expect(closed).toBe(true);
    expect(reply).toMatch(/^HTTP\/1\.1 408 /);
  });
});
