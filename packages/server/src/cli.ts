#!/usr/bin/env node
/**
 * nomyo-server: runs the reference router. The first stdout line is exactly `listening on <URL>`,
 * so scripts and tests can wait for it; diagnostics go to stderr.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startServer } from './server.js';
import type { LogEvent, NomyoServer, ServerOptions } from './types.js';

const USAGE = `Usage: nomyo-server [options]

  --host HOST          interface to bind (default 127.0.0.1)
  --port PORT          port (default 0: a free port)
  --api-key KEY        require Authorization: Bearer KEY on secure completions
  --tls-cert FILE      PEM certificate chain: serve HTTPS (with --tls-key)
  --tls-key FILE       PEM private key of the certificate
  --key-file FILE      server RSA key, PKCS#8 PEM; generated (mode 0600) when absent
  --key-size BITS      size of a generated key (default 4096)
  --upstream URL       OpenAI-compatible base URL; without it, the echo model answers
  --upstream-key KEY   bearer key for the upstream (or env NOMYO_UPSTREAM_KEY)
  --echo-delay MS      the echo model's pause between streamed words (default 0)
  --body-limit BYTES   largest request body (default 67108864)
  --protocol 1|2       highest wire protocol spoken (default 2: advertises "1, 2";
                       1: a v1-only router, as deployed routers were before v2)
  --quiet              no per-request lines on stderr
  --help               show this text
`;

class UsageError extends Error {}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(value);
}

function protocolVersion(value: string | undefined): 1 | 2 | undefined {
  if (value === undefined) return undefined;
  if (value !== '1' && value !== '2') throw new UsageError('--protocol must be 1 or 2');
  return Number(value) as 1 | 2;
}

function readPem(name: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${name}: cannot read ${file}: ${(err as Error).message}`);
  }
}

function parse(argv: string[]): { options: ServerOptions; quiet: boolean } | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'key-file': { type: 'string' },
      'key-size': { type: 'string' },
      upstream: { type: 'string' },
      'upstream-key': { type: 'string' },
      'echo-delay': { type: 'string' },
      'body-limit': { type: 'string' },
      protocol: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const options: ServerOptions = {
    host: values.host,
    port: integer('port', values.port),
    apiKey: values['api-key'],
    keyFile: values['key-file'],
    keySize: integer('key-size', values['key-size']),
    upstream: values.upstream,
    upstreamKey: values['upstream-key'] ?? (process.env.NOMYO_UPSTREAM_KEY || undefined),
    echoDelayMs: integer('echo-delay', values['echo-delay']),
    bodyLimit: integer('body-limit', values['body-limit']),
    protocol: protocolVersion(values.protocol),
  };
  if (values['tls-cert'] !== undefined && values['tls-key'] !== undefined) {
    options.tls = { cert: readPem('tls-cert', values['tls-cert']), key: readPem('tls-key', values['tls-key']) };
  }
  return { options, quiet: values.quiet ?? false };
}

function logLine(event: LogEvent): void {
  const fields = Object.entries(event.fields ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  process.stderr.write(`${event.level} ${event.message}${fields ? ` ${fields}` : ''}\n`);
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`nomyo-server: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const { options, quiet } = parsed;
  options.onLog = (event) => {
    if (!quiet || event.level !== 'info') logLine(event);
  };
  let server: NomyoServer;
  try {
    server = await startServer(options);
  } catch (err) {
    process.stderr.write(`nomyo-server: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening on ${server.url}\n`);
  process.stderr.write(
    `server key SHA-256 ${server.fingerprint} (${options.upstream ? `upstream ${options.upstream}` : 'echo model'}, protocol ${options.protocol === 1 ? '1 only' : '1 and 2'})\n`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130); // a second signal: the user insists
    stopping = true;
    process.stderr.write(`${signal}: shutting down\n`);
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main();
