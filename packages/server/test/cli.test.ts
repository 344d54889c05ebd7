/** The nomyo-server binary, built and spawned as users run it. */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS, PATHS } from '@nomyo/core/protocol';
import { VECTOR_KEY_FILE } from './helpers.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
let child: ChildProcessWithoutNullStreams | undefined;

// The binary runs from dist/: build it, so the test checks the current source.
beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: packageDir, stdio: 'pipe' });
});
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

  it('--help prints usage and exits 0; a bad option exits 2', () => {
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--upstream-key KEY/);
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
});
