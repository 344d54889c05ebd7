/**
 * The deployment examples (docs/examples/: the Kubernetes manifest, the systemd unit, the nginx
 * configuration) say only what `nomyo-server` does: every `--flag` they name is in its `--help`;
 * the manifest's and the unit's arguments start a real router (addresses, ports and the key file
 * replaced by this machine's) whose readiness path, metrics path and drain are what the examples
 * rely on; and the grace periods leave the drain its time. nginx.conf itself is run by
 * tests/nginx/replicas.test.ts.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { freePort } from '@nomyo/test-support/ports';
import { VECTOR_KEY_FILE } from '@nomyo/test-support/keys';

const CLI = createRequire(import.meta.url).resolve('@nomyo/server/package.json').replace(/package\.json$/, 'dist/cli.js');
const EXAMPLES = fileURLToPath(new URL('../../docs/examples/', import.meta.url));
const VECTOR_KEY = VECTOR_KEY_FILE; // 0600: copies keep the mode
const FILES = ['kubernetes.yaml', 'nomyo-server.service', 'nginx.conf'];

const example = (name: string) => readFileSync(path.join(EXAMPLES, name), 'utf8');
/** Commands of other programs that the examples' comments show (making the user, installing, the secrets). */
const OTHER_COMMAND = /^\s*#\s+(useradd|install|echo|npm|systemctl|kubectl)\s/;
/** Every `--flag` a text names, comments included, but for other programs' command lines. */
const flagsIn = (text: string) =>
  new Set(
    text
      .split('\n')
      .filter((line) => !OTHER_COMMAND.test(line))
      .flatMap((line) => [...line.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!)),
  );
/** The value after `--name` in an argument list. */
const valueOf = (args: string[], name: string) => args[args.indexOf(`--${name}`) + 1];

// The manifest's Deployment and its one container.
interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: Record<string, unknown>;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
function deployment() {
  const docs = parseAllDocuments(example('kubernetes.yaml')).map((d) => d.toJS());
  const found = docs.find((d) => d?.kind === 'Deployment');
  if (!found) throw new Error('docs/examples/kubernetes.yaml has no Deployment');
  const pod = found.spec.template;
  return { pod, container: pod.spec.containers[0] as Container };
}

/** The unit's ExecStart arguments after the program (continued lines joined). */
function unitArgs(): string[] {
  const unit = example('nomyo-server.service').replace(/\\\n\s*/g, ' ');
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1];
  if (!line) throw new Error('docs/examples/nomyo-server.service has no ExecStart');
  const words = line.trim().split(/\s+/);
  return words.slice(words.indexOf('nomyo-server') + 1);
}
/** A setting of the unit, e.g. `TimeoutStopSec`. */
const unitSetting = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(example('nomyo-server.service'))?.[1]?.trim();

let keyDir: string;
let keyFile: string;
beforeAll(() => {
  keyDir = mkdtempSync(path.join(tmpdir(), 'nomyo-examples-'));
  keyFile = path.join(keyDir, 'server_key.pem');
  copyFileSync(VECTOR_KEY, keyFile);
  chmodSync(keyFile, 0o600);
});
afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

describe('the flags the deployment examples use', () => {
  const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  const known = flagsIn(help);

  it.each(FILES)('are all in nomyo-server --help: %s', (name) => {
    const flags = [...flagsIn(example(name))];
    expect(flags.filter((f) => !known.has(f))).toEqual([]);
    if (name !== 'nginx.conf') expect(flags.length).toBeGreaterThan(5);
  });
});

describe('the grace periods', () => {
  it('Kubernetes: terminationGracePeriodSeconds is above the preStop pause plus --drain-timeout', () => {
    const { pod, container } = deployment();
    const drain = Number(valueOf(container.args, 'drain-timeout'));
    const pause = Number(container.lifecycle?.preStop?.exec?.command.at(-1) ?? 0);
    expect(drain).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(pause + drain);
  });

  it('Kubernetes: the liveness probe cannot fail a drain (its listener closed) into a kill: its failures take longer than the preStop pause plus --drain-timeout', () => {
    const { container } = deployment();
    const drain = Number(valueOf(container.args, 'drain-timeout'));
    const pause = Number(container.lifecycle?.preStop?.exec?.command.at(-1) ?? 0);
    const { periodSeconds = 10, failureThreshold = 3 } = container.livenessProbe as { periodSeconds?: number; failureThreshold?: number };
    expect(periodSeconds * failureThreshold).toBeGreaterThan(pause + drain);
  });

  it('systemd: TimeoutStopSec is above --drain-timeout, and stopping sends SIGTERM', () => {
    const drain = Number(valueOf(unitArgs(), 'drain-timeout'));
    expect(drain).toBeGreaterThan(0);
    expect(Number(unitSetting('TimeoutStopSec'))).toBeGreaterThan(drain);
    expect(unitSetting('KillSignal')).toBe('SIGTERM');
  });
});

/** The router started with `args`, its addresses, ports and key file made this machine's. */
async function startWith(args: string[]) {
  const port = await freePort();
  const metricsPort = await freePort();
  const local: Record<string, string> = {
    host: '127.0.0.1',
    port: String(port),
    'metrics-host': '127.0.0.1',
    'metrics-port': String(metricsPort),
    'key-file': keyFile,
    // Nothing is sent to it here; an address where nothing listens.
    upstream: 'http://127.0.0.1:9/v1',
  };
  const argv = args.map((arg, i) => (args[i - 1]?.startsWith('--') && args[i - 1]!.slice(2) in local ? local[args[i - 1]!.slice(2)]! : arg));
  const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOMYO_UPSTREAM_KEY: 'example-upstream-key' } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const exited = once(child, 'exit');
  const first = await Promise.race([once(createInterface({ input: child.stdout }), 'line') as Promise<[string]>, exited.then(() => [''] as [string])]);
  if (!/^listening on /.test(first[0])) throw new Error(`nomyo-server did not start with the example's arguments: ${stderr}`);
  return {
    port,
    metricsPort,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return child.exitCode;
    },
  };
}

describe.each([
  ['the Kubernetes manifest', () => deployment().container.args],
  ['the systemd unit', unitArgs],
])('a router started with the arguments of %s', (_name, args) => {
  it('serves the readiness path on its port, /metrics on the metrics port only, and drains to exit 0', async () => {
    const router = await startWith(args());
    try {
      const { container } = deployment();
      const probe = container.readinessProbe.httpGet;
      const probePort = container.ports.find((p) => p.name === probe.port)!.containerPort;
      expect(String(probePort)).toBe(valueOf(deployment().container.args, 'port'));
      const health = await fetch(`http://127.0.0.1:${router.port}${probe.path}`);
      expect(health.status).toBe(200);
      const body = (await health.json()) as { status: string; protocols: unknown; key_fingerprint: string };
      expect(body.status).toBeTruthy();
      expect(body.key_fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(body)).not.toContain('example-upstream-key');

      const metricsPath = deployment().pod.metadata.annotations['prometheus.io/path'];
      expect(deployment().pod.metadata.annotations['prometheus.io/port']).toBe(valueOf(deployment().container.args, 'metrics-port'));
      const metrics = await fetch(`http://127.0.0.1:${router.metricsPort}${metricsPath}`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await metrics.text()).toMatch(/^# HELP /m);
      // Not on the port the Service and nginx expose.
      const onMain = await fetch(`http://127.0.0.1:${router.port}${metricsPath}`);
      await onMain.arrayBuffer();
      expect(onMain.status).toBe(404);
    } finally {
      expect(await router.stop(), router.stderr()).toBe(0);
    }
  });
});
