/**
 * nomyo-server run as in production: its flags, the drain on SIGTERM (a second signal, one during
 * startup), and `--log-format json`, whose lines, over a representative run, hold none of the
 * secrets the run used.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { APIError, SecureCompletionClient } from '@nomyo/core';
import { HEADERS, PATHS } from '@nomyo/core/protocol';
import { countInMemory } from '@nomyo/test-support/secrets';
import { makeTestCertificates } from '@nomyo/test-support/tls';
import { VECTOR_KEY_FILE, post } from './helpers.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
let child: ChildProcessWithoutNullStreams | undefined;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nomyo-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

interface Running {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  stderr: () => string;
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

async function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Running> {
  const proc = spawn(process.execPath, [cli, '--port', '0', ...args], { env });
  child = proc;
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const exit = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout }).once('line', resolve);
    void exit.then(([code]) => reject(new Error(`exited with ${code}: ${stderr}`)));
  });
  return { proc, url: line.slice('listening on '.length), stderr: () => stderr, exit };
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

describe('nomyo-server in production', () => {
  it('--help names every production flag, and bad values exit 2', () => {
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    for (const flag of ['--drain-timeout', '--max-concurrent', '--upstream-timeout', '--headers-timeout', '--request-timeout', '--keep-alive-timeout', '--stream-stall-timeout', '--metrics on|off', '--metrics-host', '--metrics-port', '--log-format text|json', '/healthz']) {
      expect(help.stdout).toContain(flag);
    }
    for (const [args, message] of [
      [['--drain-timeout', 'soon'], /--drain-timeout must be a number of seconds/],
      [['--stream-stall-timeout', 'never'], /--stream-stall-timeout must be a number of seconds/],
      [['--upstream-timeout', '0'], /--upstream-timeout must be a number of seconds above 0/],
      // Longer than a timer waits: Node.js would wait 1 ms instead.
      [['--upstream-timeout', '3000000'], /--upstream-timeout must be a number of seconds above 0, at most 2147483/],
      [['--log-format', 'xml'], /--log-format must be text or json/],
      [['--metrics', 'maybe'], /--metrics must be on or off/],
      [['--max-concurrent', '0'], /--max-concurrent must be a positive integer/],
      [['--metrics', 'off', '--metrics-port', '9464'], /need --metrics on/],
    ] as const) {
      const bad = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
      expect(bad.status, args.join(' ')).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
  });

  it('SIGTERM drains: new connections refused, a short stream finishes, one that outlasts --drain-timeout ends with "router shutting down"; exit 0', async () => {
    const r = await run(['--key-file', VECTOR_KEY_FILE, '--quiet', '--echo-delay', '100', '--drain-timeout', '1']);
    const client = new SecureCompletionClient({ routerUrl: r.url, allowHttp: true });
    const short = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: words(3) }] });
    const long = await client.streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: words(40) }] });
    const drink = async (s: AsyncIterable<{ choices: Array<{ delta: { content?: string | null } }> }>, into: string[]) => {
      try {
        for await (const c of s) into.push(c.choices[0]?.delta.content ?? '');
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const shortText: string[] = [];
    const longText: string[] = [];
    const ends = [drink(short, shortText), drink(long, longText)];
    await expect.poll(() => longText.length).toBeGreaterThan(1);
    const t0 = performance.now();
    r.proc.kill('SIGTERM');
    await expect.poll(() => r.stderr()).toContain('SIGTERM: shutting down');
    const port = Number(new URL(r.url).port);
    const connected = await new Promise<string>((resolve) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); resolve('connected'); }).once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')));
    expect(connected).toBe('ECONNREFUSED');
    const [shortEnd, longEnd] = await Promise.all(ends);
    expect(shortEnd).toBeUndefined();
    expect(shortText.join('')).toBe(`echo: ${words(3)}`);
    expect(longEnd).toBeInstanceOf(APIError);
    expect(longEnd).toMatchObject({ status: 503, detail: 'router shutting down' });
    expect(longText.join('').length).toBeGreaterThan(8);
    const [code] = await r.exit;
    expect(code).toBe(0);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(4000);
  });

  it('takes its API key from NOMYO_SERVER_API_KEY, off the command line; --api-key wins', async () => {
    const key = 'sk-from-env-4242';
    const r = await run(['--key-file', VECTOR_KEY_FILE, '--quiet'], { ...process.env, NOMYO_SERVER_API_KEY: key });
    if (process.platform === 'linux') expect(readFileSync(`/proc/${r.proc.pid}/cmdline`, 'utf8')).not.toContain(key);
    // Not a package: 400 once past the key check, 401 before it.
    expect((await post(r.url, 'x')).status).toBe(401);
    expect((await post(r.url, 'x', { Authorization: 'Bearer sk-wrong' })).status).toBe(401);
    expect((await post(r.url, 'x', { Authorization: `Bearer ${key}` })).status).toBe(400);
    r.proc.kill('SIGTERM');
    await r.exit;
    const both = await run(['--key-file', VECTOR_KEY_FILE, '--quiet', '--api-key', 'sk-flag'], { ...process.env, NOMYO_SERVER_API_KEY: key });
    expect((await post(both.url, 'x', { Authorization: `Bearer ${key}` })).status).toBe(401);
    expect((await post(both.url, 'x', { Authorization: 'Bearer sk-flag' })).status).toBe(400);
    both.proc.kill('SIGTERM');
    await both.exit;
  });

  it('a second signal exits at once', async () => {
    const r = await run(['--key-file', VECTOR_KEY_FILE, '--quiet', '--echo-delay', '200']);
    const stream = await new SecureCompletionClient({ routerUrl: r.url, allowHttp: true }).streamSecureRequest({ model: 'm', messages: [{ role: 'user', content: words(100) }] });
    const reading = (async () => {
      for await (const _ of stream);
    })().catch(() => undefined);
    r.proc.kill('SIGTERM');
    await expect.poll(() => r.stderr()).toContain('SIGTERM: shutting down');
    const t0 = performance.now();
    r.proc.kill('SIGINT');
    const [code] = await r.exit;
    expect(code).toBe(130);
    expect(performance.now() - t0).toBeLessThan(1000);
    await reading;
  });

  it('a signal during startup ends it at once, before serving, and leaves no half-written key file', async () => {
    // A key file that blocks its reader (a FIFO nobody writes): the startup never ends by itself.
    const fifo = join(dir, 'stuck.pem');
    execFileSync('mkfifo', [fifo]);
    const stuck = spawn(process.execPath, [cli, '--port', '0', '--key-file', fifo]);
    child = stuck;
    let out = '';
    stuck.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    stuck.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise((r) => setTimeout(r, 1500)); // loaded and stuck in the read, whatever the machine's load
    const t0 = performance.now();
    stuck.kill('SIGTERM');
    // Ended by the signal itself (which systemd counts as a clean stop): exit() would wait on the read.
    const [, signal] = (await once(stuck, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(signal).toBe('SIGTERM');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(out).toBe('');
    expect(err).toBe('SIGTERM during startup: exiting\n');

    // A key being generated: whatever moment the signal comes, the key file is whole or absent.
    const keyFile = join(dir, 'new', 'server.pem');
    const generating = spawn(process.execPath, [cli, '--port', '0', '--key-file', keyFile, '--key-size', '4096']);
    child = generating;
    await new Promise((r) => setTimeout(r, 400));
    generating.kill('SIGTERM');
    const [code2, signal2] = (await once(generating, 'exit')) as [number | null, NodeJS.Signals | null];
    // During startup: ended by the signal; if the key was ready by then: drained, exit 0.
    expect(code2 === 0 || signal2 === 'SIGTERM').toBe(true);
    if (existsSync(keyFile)) expect(readFileSync(keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(existsSync(join(dir, 'new')) ? readdirSync(join(dir, 'new')).filter((f) => f.includes('partial')) : []).toEqual([]);
  });
});

describe('--log-format json', () => {
  const MARKER = 'PROMPT-MARKER-7f3c';
  const ANSWER_MARKER = 'ANSWER-MARKER-91ab';
  const API_KEY = 'sk-router-api-key-5d2e';
  const UPSTREAM_KEY = 'sk-upstream-key-c81f';
  let upstream: http.Server;
  let upstreamUrl: string;

  beforeAll(async () => {
    // An OpenAI-compatible upstream: answers with a marker, streams when asked, and refuses (quoting the prompt) when told to.
    upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const request = JSON.parse(body) as { model: string; stream?: boolean; messages: Array<{ content: string }> };
        const prompt = request.messages.at(-1)!.content;
        if (prompt.includes('refuse')) return void res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { message: `bad prompt: ${prompt}` } }));
        const base = { id: 'up', created: 1, model: request.model };
        if (!request.stream) {
          return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: ANSWER_MARKER }, finish_reason: 'stop' }] }));
        }
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        for (const [delta, finish] of [[{ role: 'assistant', content: ANSWER_MARKER }, null], [{}, 'stop']] as const) {
          res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('one line per request with its facts, and none of the run’s secrets anywhere in the output', async () => {
    const keyFile = join(dir, 'log-test.pem');
    await copyFile(VECTOR_KEY_FILE, keyFile);
    const r = await run(['--key-file', keyFile, '--log-format', 'json', '--api-key', API_KEY, '--upstream', upstreamUrl, '--upstream-key', UPSTREAM_KEY]);
    const key = { apiKey: API_KEY };
    const chat = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });
    const v2 = new SecureCompletionClient({ routerUrl: r.url, allowHttp: true });
    const v1 = new SecureCompletionClient({ routerUrl: r.url, allowHttp: true, protocol: 1, keySize: 2048 });
    const ids = { v2: crypto.randomUUID(), v1: crypto.randomUUID(), stream: crypto.randomUUID(), refused: crypto.randomUUID() };

    expect((await v2.sendSecureRequest(chat(`${MARKER} whole`), ids.v2, { ...key, securityTier: 'high' })).choices[0]?.message.content).toBe(ANSWER_MARKER);
    expect((await v1.sendSecureRequest(chat(`${MARKER} v1`), ids.v1, key)).choices[0]?.message.content).toBe(ANSWER_MARKER);
    let streamed = '';
    for await (const c of await v2.streamSecureRequest(chat(`${MARKER} stream`), ids.stream, key)) streamed += c.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(ANSWER_MARKER);
    await expect(v2.sendSecureRequest(chat(`${MARKER} refuse`), ids.refused, key)).rejects.toMatchObject({ status: 400 });
    await expect(v2.sendSecureRequest(chat(`${MARKER} wrong key`), crypto.randomUUID(), { apiKey: 'sk-wrong-key-0000' })).rejects.toMatchObject({ status: 401 });
    expect((await post(r.url, 'not a package', { Authorization: `Bearer ${API_KEY}` })).status).toBe(400);
    expect((await fetch(r.url + '/healthz')).status).toBe(200);
    expect((await fetch(r.url + '/metrics')).status).toBe(200);
    r.proc.kill('SIGTERM');
    expect((await r.exit)[0]).toBe(0);

    const lines = r.stderr().trim().split('\n');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const requests = events.filter((e) => 'status' in e);
    const byId = (id: string) => requests.find((e) => e.payload_id === id);
    expect(byId(ids.v2)).toMatchObject({ level: 'info', method: 'POST', path: PATHS.secureCompletion, protocol: 2, tier: 'high', streamed: false, status: 200, upstream_status: 200 });
    expect(byId(ids.v1)).toMatchObject({ protocol: 1, tier: null, streamed: false, status: 200, upstream_status: 200 });
    expect(byId(ids.stream)).toMatchObject({ protocol: 2, streamed: true, status: 200, upstream_status: 200 });
    expect(byId(ids.refused)).toMatchObject({ protocol: 2, status: 400, upstream_status: 400 });
    for (const e of [byId(ids.v2), byId(ids.stream)]) {
      expect(e!.bytes_in).toBeGreaterThan(100);
      expect(e!.bytes_out).toBeGreaterThan(100);
      expect(e!.duration_ms).toBeGreaterThan(0);
    }
    expect(requests.filter((e) => e.status === 401)).toHaveLength(1);
    expect(requests.find((e) => e.path === '/healthz')).toMatchObject({ payload_id: null, protocol: null, status: 200 });

    // The secrets of the run: none in stderr or stdout.
    const pem = readFileSync(keyFile, 'utf8');
    const pemBody = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const secrets = [
      MARKER,
      ANSWER_MARKER,
      API_KEY,
      UPSTREAM_KEY,
      'sk-wrong-key-0000',
      'Bearer',
      'authorization',
      ...pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')),
      pemBody,
      pemBody.slice(100, 164),
      Buffer.from(pemBody, 'base64').toString('hex').slice(200, 264),
      'bad prompt',
    ];
    const output = r.stderr() + r.proc.stdout.read()?.toString();
    for (const secret of secrets) expect(output.toLowerCase(), secret).not.toContain(secret.toLowerCase());
    expect(HEADERS.authorization.toLowerCase()).toBe('authorization');
  });

  it.runIf(process.platform === 'linux')('holds neither its key file nor its TLS key as PEM text in its memory once serving (read as bytes, zeroed)', async () => {
    const tls = makeTestCertificates();
    try {
      const r = await run(['--key-file', VECTOR_KEY_FILE, '--quiet', '--tls-cert', tls.certFile, '--tls-key', tls.keyFile]);
      const served = await new Promise<string>((resolve, reject) => {
        https.get(r.url + PATHS.publicKey, { ca: tls.caPem }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (part: string) => (text += part)).on('end', () => resolve(text));
        }).on('error', reject);
      });
      expect(served).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      // Every base64 line of both private keys, and a line of the certificate as a control: the CLI
      // reads it as text, so it must be found, or the scan finds nothing at all.
      const linesOf = (pem: string) => pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')).map((l) => Buffer.from(l, 'latin1'));
      const keyLines = [...linesOf(tls.keyPem), ...linesOf(readFileSync(VECTOR_KEY_FILE, 'utf8'))];
      const counts = countInMemory(r.proc.pid!, [...keyLines, linesOf(tls.certPem)[1]!]);
      expect(counts.at(-1)).toBeGreaterThan(0);
      expect(counts.slice(0, -1)).toEqual(keyLines.map(() => 0));
    } finally {
      tls.cleanup();
    }
  });
});
