/**
 * @nomyo/core's built ESM in every server runtime the README's support table names: each one runs
 * the same scenario (scenario.mjs) against one reference server on loopback: a real request whose
 * answer it decrypts, a tampered answer it must refuse, what getMemoryProtection() says (checked
 * against the kernel where it can be), and key files. One runtime at a time, 2048-bit keys except
 * one 4096-bit first request per runtime for the timings it prints.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecureChatCompletion, type MemoryProtectionInfo } from '@nomyo/core';
import type { NomyoServer } from '@nomyo/server';
import { ENGINES } from '../../scripts/browsers.mjs';
import { startTestServer } from '../integration/support.js';
import { expectNoPlaintextOnWire } from '../sdk/wire.js';
import { runtimeBinaries } from './binaries.js';
import { supportTable } from './support-table.js';
import { VECTOR_KEY_FILE } from '@nomyo/test-support/keys';

const run = promisify(execFile);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const CLIENT = here('./client.mjs');
const WORKERD_HOST = here('./workerd-host.mjs');
const SERVER_KEY_FILE = VECTOR_KEY_FILE; // 0600, as a router's key file is kept
// The router tampers with the answers to requests carrying this API key, and only those.
const TAMPER_KEY = 'tamper-with-this-answer';

interface Exchange {
  sent: string;
  content: string;
  ms: number;
  protocol: 1 | 2;
  primes?: number;
  /** workerd only: the workerd process's CPU time for the request. */
  cpuMs?: number;
}
interface Result {
  runtime: { name: string; version: string };
  first: Exchange;
  one: Exchange;
  tampered: { name?: string; code?: string; securityError?: boolean; accepted?: boolean };
  protection: MemoryProtectionInfo;
  /** VmLck of the runtime's process, where it may read /proc/self/status. */
  vmLck?: number | null;
  keyFiles: 'ok' | { name: string; message: string };
  /** A fresh client on the default protocol (v2: no client key), and its second request. */
  firstDefault: Exchange;
  oneDefault: Exchange;
  streamed: { sent: string; content: string; streamed: boolean; protocol: number };
  /** A request whose body is over 64 KiB: echoed whole or not. */
  large: { echoed: boolean; length: number };
  tamperedDefault: Result['tampered'];
  first4096?: Exchange;
  /** workerd only: node: modules the Worker bundle imports. */
  nodeImports?: string[];
}

interface Runtime {
  /** The first cell of the README support table's row that this run checks. */
  row: string;
  command: (keyDir: string) => string[];
  version: RegExp;
  native: 'yes' | RegExp;
  keyFiles: boolean;
}

const bin = runtimeBinaries();
const NODE_MAJOR = process.versions.node.split('.')[0]!;
const deno = (...permissions: string[]) => [bin.deno, 'run', '--no-prompt', ...permissions];

const RUNTIMES: Runtime[] = [
  // The Node.js that runs the suite (20 in CI); its README version cell says "<major>.x".
  { row: `Node.js ${NODE_MAJOR}`, command: (dir) => [process.execPath, CLIENT, ...args(dir)], version: new RegExp(`^${NODE_MAJOR}\\.`), native: 'yes', keyFiles: true },
  { row: 'Node.js 22', command: (dir) => [bin.node22, CLIENT, ...args(dir)], version: /^22\./, native: 'yes', keyFiles: true },
  { row: 'Node.js 24', command: (dir) => [bin.node24, CLIENT, ...args(dir)], version: /^24\./, native: 'yes', keyFiles: true },
  { row: 'Bun 1', command: (dir) => [bin.bun, CLIENT, ...args(dir)], version: /^1\./, native: 'yes', keyFiles: true },
  { row: 'Deno 2 (--allow-all)', command: (dir) => [...deno('--allow-all'), CLIENT, ...args(dir)], version: /^2\./, native: 'yes', keyFiles: true },
  {
    // What a careful Deno user grants: no FFI (so no addon) and no environment; key files need the uid.
    row: 'Deno 2 (least privilege)',
    command: (dir) => [...deno('--allow-net=127.0.0.1', '--allow-read', `--allow-write=${dir}`, '--allow-sys=uid'), CLIENT, ...args(dir, false)],
    version: /^2\./,
    native: /^zeroing only: @nomyo\/native not permitted \(@nomyo\/native: Requires \w+ access/,
    keyFiles: true,
  },
  // miniflare needs Node >= 22: the host runs on node22; the Worker itself runs in workerd.
  { row: 'Cloudflare Workers (workerd)', command: () => [bin.node22, WORKERD_HOST, server.url, TAMPER_KEY], version: /^1\.\d{8}\./, native: /^zeroing only: (not Node\.js|@nomyo\/native not installed)$/, keyFiles: false },
];

let server: NomyoServer;
/** Arguments of client.mjs (commands are made once the server is up). */
function args(keyDir: string, first4096 = true): string[] {
  return [server.url, TAMPER_KEY, join(keyDir, 'keys'), ...(first4096 ? ['--first-4096'] : [])];
}

const flipFirstBit = (b64: string) => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[0]! ^= 1;
  return bytes.toString('base64');
};

const timings: Record<string, string | number>[] = [];
/** Row -> the version its run reported, for the README check. */
const tested = new Map<string, string>();

describe('@nomyo/core in every server runtime', () => {
  beforeAll(async () => {
    server = await startTestServer({
      tamperResponse: (pkg, request) =>
        request.headers.authorization === `Bearer ${TAMPER_KEY}` ? { ...pkg, encrypted_payload: { ...pkg.encrypted_payload, tag: flipFirstBit(pkg.encrypted_payload.tag) } } : pkg,
    });
  });
  afterAll(async () => {
    await server?.close();
    // For the report: wall times in ms ("first": a fresh client, key generation included for v1),
    // and for workerd the CPU time its process spent on each request.
    if (timings.length) console.table(timings);
  });

  it('Deno without --allow-sys=uid: a key directory is refused with a KeyFileError that names the permission, not Deno\'s own error', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'nomyo-runtime-'));
    try {
      const [file, ...rest] = [...deno('--allow-net=127.0.0.1', '--allow-read', `--allow-write=${keyDir}`), here('keydir-uid.mjs'), server.url, join(keyDir, 'keys')];
      const { stdout } = await run(file!, rest, { cwd: here('.'), timeout: 60_000, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } });
      expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({
        name: 'KeyFileError',
        code: 'ERR_NOMYO_KEY_FILE',
        message: expect.stringMatching(/may not read its own user id, to check that the directory is its own \(Deno: --allow-sys=uid\)$/),
      });
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it.each(RUNTIMES)('$row', async (runtime) => {
    const keyDir = mkdtempSync(join(tmpdir(), 'nomyo-runtime-'));
    try {
      const [file, ...rest] = runtime.command(keyDir);
      const { stdout, stderr } = await run(file!, rest, {
        cwd: here('.'),
        timeout: 60_000,
        env: { ...process.env, NOMYO_DISABLE_NATIVE: '', DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Result;
      // A library prints nothing, and makes its runtime print nothing either (no deprecation warning).
      expect(stderr).toBe('');

      expect(result.runtime.version).toMatch(runtime.version);
      if (result.nodeImports) expect(result.nodeImports).toEqual([]); // the Worker bundle
      // Real exchanges, decrypted; nothing of them in plaintext on the wire.
      const v1 = [result.first, result.one, ...(result.first4096 ? [result.first4096] : [])];
      const v2 = [result.firstDefault, result.oneDefault];
      for (const exchange of [...v1, ...v2]) expect(exchange.content).toBe(`echo: ${exchange.sent}`);
      expect([...v1.map((e) => e.protocol), ...v2.map((e) => e.protocol)]).toEqual([...v1.map(() => 1), 2, 2]);
      // A streamed answer, record by record (v2 streaming's keys and records in this runtime).
      expect(result.streamed).toEqual({ sent: result.streamed.sent, content: `echo: ${result.streamed.sent}`, streamed: true, protocol: 2 });
      expectNoPlaintextOnWire(server, [...v1, ...v2, result.streamed].map((e) => e.sent));
      // A body over 64 KiB goes otherwise than a small one (a redirect mode workerd refuses, once).
      expect(result.large).toEqual({ echoed: true, length: expect.any(Number) });
      for (const tampered of [result.tampered, result.tamperedDefault]) {
        expect(tampered).toEqual({ name: 'SecurityError', code: 'ERR_NOMYO_SECURITY', securityError: true });
      }

      const protection = result.protection;
      if (runtime.native === 'yes') {
        expect(protection).toMatchObject({ kind: 'native', reason: expect.stringMatching(/^@nomyo\/native \d+\.\d+\.\d+ \(/) });
        // The kernel agrees: at least what the addon says it holds locked is locked.
        if (protection.locking) {
          expect(protection.lockedBytes).toBeGreaterThan(0);
          expect(result.vmLck).toBeGreaterThanOrEqual(protection.lockedBytes!);
        }
      } else {
        expect(protection).toMatchObject({ kind: 'js', locking: false, dumpExclusion: false });
        expect(protection.reason).toMatch(runtime.native);
      }

      if (runtime.keyFiles) expect(result.keyFiles).toBe('ok');
      else expect(result.keyFiles).toMatchObject({ name: 'InvalidArgumentError', message: expect.stringMatching(/^key files need Node\.js, Bun or Deno \(a file system\)/) });

      tested.set(runtime.row, runtime.row === `Node.js ${NODE_MAJOR}` ? `${NODE_MAJOR}.x` : result.runtime.version);
      const ms = (e: Exchange | undefined, cpu = false) => (e === undefined ? '' : Math.round(cpu ? e.cpuMs! : e.ms));
      timings.push({
        runtime: `${runtime.row} ${result.runtime.version}`,
        'v1 first 2048': ms(result.first),
        'v1 first 4096': ms(result.first4096),
        primes: result.first4096?.primes ?? '',
        'v1 next': ms(result.one),
        'v2 first': ms(result.firstDefault),
        'v2 next': ms(result.oneDefault),
        ...(result.first.cpuMs === undefined
          ? {}
          : { 'cpu v1 first 2048': ms(result.first, true), 'cpu v1 first 4096': ms(result.first4096, true), 'cpu v1 next': ms(result.one, true), 'cpu v2 first': ms(result.firstDefault, true), 'cpu v2 next': ms(result.oneDefault, true) }),
      });
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it.each([
    ['Node.js 22', bin.node22],
    ['Node.js 24', bin.node24],
  ])('the reference server in %s: v1 and v2, small and 1 MiB, and no warning on its stderr', async (_row, node) => {
    const cli = createRequire(import.meta.url).resolve('@nomyo/server/package.json').replace(/package\.json$/, 'dist/cli.js');
    const child = spawn(node, [cli, '--port', '0', '--key-file', SERVER_KEY_FILE, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const url = /^listening on (\S+)$/.exec(line)![1]!;
      for (const protocol of [1, 2] as const) {
        const client = new SecureChatCompletion({ baseUrl: url, allowHttp: true, maxRetries: 0, protocol, keySize: 2048 });
        try {
          for (const content of ['short', 'x'.repeat(1 << 20)]) {
            const answer = await client.create({ model: 'echo', messages: [{ role: 'user', content }] });
            expect(answer.choices[0]!.message.content === `echo: ${content}`).toBe(true);
          }
        } finally {
          await client.dispose();
        }
      }
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    // Its own lines only: the key's fingerprint at start, the signal at the end.
    expect(stderr.split('\n').filter((l) => l && !/^server key SHA-256 [0-9a-f]{64} |^SIGTERM: shutting down$/.test(l))).toEqual([]);
  });

  it("the README's support table says what these runs found, and names the browser engines", () => {
    const table = supportTable();
    const browsers = Object.values(ENGINES).map((engine) => engine.title);
    expect([...table.keys()].sort()).toEqual([...RUNTIMES.map((r) => r.row), ...browsers].sort());
    for (const runtime of RUNTIMES) {
      const row = table.get(runtime.row)!;
      expect(row.version, runtime.row).toContain(tested.get(runtime.row));
      expect(row.native, runtime.row).toBe(runtime.native === 'yes' ? 'yes' : 'no');
      expect(row.keyFiles, runtime.row).toBe(runtime.keyFiles ? 'yes' : 'no');
    }
    // tests/browser checks these engines; none has the addon or key files.
    for (const title of browsers) expect(table.get(title), title).toMatchObject({ native: 'no', keyFiles: 'no' });
  });
});
