/**
 * `nomyo-server` replicas as an operator runs them behind a load balancer: each a process of its
 * own on a fixed loopback port, all with the same key file, restarted the way a rolling restart
 * does it (SIGTERM, wait for the exit, start again on the same port, wait for `GET /healthz` 200).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const CLI = createRequire(import.meta.url).resolve('@nomyo/server/package.json').replace(/package\.json$/, 'dist/cli.js');

export interface Replica {
  /** `http://127.0.0.1:PORT`: the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** What its processes wrote to stderr so far, all of them in turn. */
  stderr(): string;
  /** SIGTERM, then waits for the process to exit: resolves to its exit code (null: killed by a signal). */
  stop(): Promise<number | null>;
  /** Starts it again on its port and waits until `/healthz` answers 200. */
  start(): Promise<void>;
  /** SIGKILL if still running (the test's cleanup). */
  kill(): Promise<void>;
}

/** Polls `url` until it answers 200, for up to `ms`. */
export async function waitForOk(url: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${url} did not answer 200 within ${ms} ms (last: ${last})`);
}

/** A replica of `nomyo-server` on `port` with `args` (its key file among them), started and healthy. */
export async function startReplica(port: number, args: string[]): Promise<Replica> {
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let stderr = '';
  const url = `http://127.0.0.1:${port}`;

  const start = async (): Promise<void> => {
    const proc = spawn(process.execPath, [CLI, '--host', '127.0.0.1', '--port', String(port), '--quiet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    exited = once(proc, 'exit');
    const first = await Promise.race([once(createInterface({ input: proc.stdout! }), 'line') as Promise<[string]>, exited.then(() => [''] as [string])]);
    if (!/^listening on /.test(first[0])) {
      proc.kill('SIGKILL');
      throw new Error(`nomyo-server on port ${port} did not start: ${stderr.trim() || first[0]}`);
    }
    await waitForOk(`${url}/healthz`);
  };

  await start();
  return {
    url,
    port,
    stderr: () => stderr,
    start,
    stop: async () => {
      const proc = child!;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      return proc.exitCode;
    },
    kill: async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
