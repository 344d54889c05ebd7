/** The reference server in its own process (as a real router is), so its work does not share our event loop. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { copyFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The vector router key as a router's key file is kept: a 0600 copy (a checkout has it 0644, which
 * the router warns of), in a temp directory of this run, removed at its exit.
 */
const keyDir = mkdtempSync(join(tmpdir(), 'nomyo-bench-'));
process.once('exit', () => rmSync(keyDir, { recursive: true, force: true }));
export const SERVER_KEY = join(keyDir, 'server_4096.pem');
copyFileSync(new URL('../../test-vectors/v1/keys/server_4096.pem', import.meta.url), SERVER_KEY);
chmodSync(SERVER_KEY, 0o600);

/** Starts `nomyo-server` on a free loopback port; `args` are extra CLI flags (e.g. ['--protocol', '1']), `nodeArgs` Node's own, `env` its environment. */
export async function startServerProcess(args = [], nodeArgs = [], env = process.env) {
  const cli = createRequire(import.meta.url).resolve('@nomyo/server/package.json').replace(/package\.json$/, 'dist/cli.js');
  const child = spawn(process.execPath, [...nodeArgs, cli, '--port', '0', '--key-file', SERVER_KEY, '--quiet', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const [line] = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value]);
  const url = /^listening on (\S+)$/.exec(line)?.[1];
  if (!url) throw new Error(`server did not start: ${line}`);
  return { url, pid: child.pid, close: () => new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGTERM'))) };
}
