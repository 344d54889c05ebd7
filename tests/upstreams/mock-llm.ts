/**
 * @dwmkerr/mock-llm, an independent OpenAI-compatible server from npm, as a router's upstream: started
 * on loopback with a port and a config file of the test's. Its default answer echoes the last user
 * message the way it always does, without `created` or a choice's `index`; its chunks lack `created`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@nomyo/test-support/ports';

const PACKAGE = createRequire(import.meta.url).resolve('@dwmkerr/mock-llm/package.json');
const BIN = PACKAGE.replace(/package\.json$/, 'dist/main.js');

export interface MockLlm {
  /** Its OpenAI base URL: `http://127.0.0.1:PORT/v1`. */
  readonly baseUrl: string;
  /** What it printed: it logs every request it answers. */
  output(): string;
  close(): Promise<void>;
}

/** Starts mock-llm with `config` (its YAML) and waits until it answers `/health`. */
export async function startMockLlm(config: string): Promise<MockLlm> {
  const dir = mkdtempSync(join(tmpdir(), 'mock-llm-'));
  const file = join(dir, 'mock-llm.yaml');
  writeFileSync(file, config);
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, '--config', file], {
    cwd: dir,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = once(child, 'exit');
  const origin = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (let waited = 0; ; waited += 50) {
    if (child.exitCode !== null) throw new Error(`mock-llm exited: ${output}`);
    if (await fetch(`${origin}/health`).then((r) => r.ok, () => false)) break;
    if (waited > 20_000) {
      await close();
      throw new Error(`mock-llm did not start: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { baseUrl: `${origin}/v1`, output: () => output, close };
}
