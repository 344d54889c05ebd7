/**
 * The `nomyo-server` CLI as a child process, as an operator runs it behind a proxy: started with
 * the shared vector key (no RSA-4096 generation) and the test's options; its first stdout line
 * names the URL it listens on.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { VECTOR_KEY_FILE } from '@nomyo/test-support/keys';

const CLI = createRequire(import.meta.url).resolve('@nomyo/server/package.json').replace(/package\.json$/, 'dist/cli.js');
const SERVER_KEY_FILE = VECTOR_KEY_FILE; // 0600, as a router's key file is kept

export interface RouterProcess {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then waits for it to exit. */
  close(): Promise<void>;
}

export async function startRouterProcess(args: string[]): Promise<RouterProcess> {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--key-file', SERVER_KEY_FILE, '--quiet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([once(lines, 'line') as Promise<[string]>, exited.then(() => [''] as [string])]);
  const url = /^listening on (\S+)$/.exec(first[0])?.[1];
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`nomyo-server did not start: ${stderr.trim() || first[0]}`);
  }
  return {
    url,
    stderr: () => stderr,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
