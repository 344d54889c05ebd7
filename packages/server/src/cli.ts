#!/usr/bin/env node
/**
 * nomyo-server: runs the reference router. The first stdout line is exactly `listening on <URL>`
 * (then `metrics on <URL>` when /metrics has a listener of its own), so scripts and tests can wait
 * for it; diagnostics go to stderr, as text or JSON lines (`--log-format`). SIGTERM or SIGINT
 * drains (drain.ts) and exits 0; a second one exits at once; one during startup ends it at once,
 * before it serves.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { inFlagTerms } from '@nomyo/core/internal';
import { UsageError, checkKeyFileFlag, integer, oneOf, protocolVersion, readFlagFile, seconds, upstreamKeyFromEnv } from './cli-values.js';
import { removePartialKeyFiles } from './keys.js';
import { LOG_FORMATS, formatLogEvent, type LogFormat } from './log-format.js';
import { checkOptions, createServer } from './server.js';
import type { LogEvent, NomyoServer, ServerOptions } from './types.js';

const USAGE = `Usage: nomyo-server [options]

  --host HOST          interface to bind (default 127.0.0.1)
  --port PORT          port (default 0: a free port)
  --api-key KEY        require Authorization: Bearer KEY on secure completions
                       (or env NOMYO_SERVER_API_KEY: a command line is readable by other users)
  --tls-cert FILE      PEM certificate chain: serve HTTPS (with --tls-key)
  --tls-key FILE       PEM private key of the certificate
  --key-file FILE      server RSA key, PKCS#8 PEM; generated (mode 0600) when absent
  --accept-key-file FILE
                       another key that opens requests, never served: a rotation's next
                       or old key (repeatable; docs/deployment.md, "Rotating the key")
  --key-size BITS      size of a generated key (default 4096)
  --upstream URL       OpenAI-compatible base URL; without it, the echo model answers
                       (no user:password@, ?query or #fragment: its key goes in --upstream-key)
  --upstream-key KEY   bearer key for the upstream (or env NOMYO_UPSTREAM_KEY)
  --echo-delay MS      the echo model's pause between streamed words (default 0)
  --body-limit BYTES   largest request body (default 67108864)
  --protocol 1|2       highest wire protocol spoken (default 2: advertises "1, 2";
                       1: a v1-only router, as deployed routers were before v2)

 Production (docs/deployment.md):
  --drain-timeout SECONDS   on SIGTERM/SIGINT, time for requests and streams in flight
                            to finish before they are ended (default 30)
  --max-concurrent N        requests handled at once; above it 503 with Retry-After
                            (default: no limit)
  --upstream-timeout SECONDS  time to the upstream's first byte, and the longest
                            silence after it; past it 504 (default 300)
  --headers-timeout SECONDS   a client must send its headers within this (default 30,
                            or --request-timeout when that is shorter)
  --request-timeout SECONDS   ...and its whole request, body included (default 300)
  --keep-alive-timeout SECONDS  idle kept-alive connections are closed after this
                            (default 65: above nginx's 60, so the proxy closes first)
  --stream-stall-timeout SECONDS  a stream whose client takes nothing for this long
                            is cut off, and its upstream request; so is a whole
                            answer's (default 60; 0: never)
  --metrics on|off          GET /metrics, Prometheus text format (default on)
  --metrics-host HOST       serve /metrics on a listener of its own on HOST
                            (default 127.0.0.1 with --metrics-port)
  --metrics-port PORT       ...on PORT (0: a free one); the main one then answers 404
  --log-format text|json    stderr lines: text (default), or one JSON object per
                            line, one per request (no plaintext, key or API key)
  GET /healthz answers {"status","protocols","key_fingerprint","accepted_key_fingerprints"},
  503 while draining.
  /healthz and /metrics are public: they hold nothing secret and need no --api-key.

  --quiet              no per-request lines on stderr
  --help               show this text
  --version            print the version of @nomyo/server
`;

/** The flag of each option the CLI sets, for the library's messages, which name options. */
const FLAGS: Partial<Record<keyof ServerOptions, string>> = {
  host: 'host',
  port: 'port',
  apiKey: 'api-key',
  keyFile: 'key-file',
  acceptKeyFiles: 'accept-key-file',
  keySize: 'key-size',
  upstream: 'upstream',
  upstreamKey: 'upstream-key',
  echoDelayMs: 'echo-delay',
  bodyLimit: 'body-limit',
  protocol: 'protocol',
  drainTimeoutMs: 'drain-timeout',
  maxConcurrent: 'max-concurrent',
  upstreamTimeoutMs: 'upstream-timeout',
  headersTimeoutMs: 'headers-timeout',
  requestTimeoutMs: 'request-timeout',
  keepAliveTimeoutMs: 'keep-alive-timeout',
  streamStallTimeoutMs: 'stream-stall-timeout',
  metrics: 'metrics',
  metricsHost: 'metrics-host',
  metricsPort: 'metrics-port',
};

/** Each option as its flag (`--port`), as library messages are put in the flags' terms. */
const FLAG_TERMS: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(FLAGS).map(([option, flag]) => [option, `--${flag}`]));

/**
 * The library's own check of the options, as a usage error in the words of the flags: its limits
 * stay said once, there. The CLI's parsers have already refused what is no number of the flag's
 * unit (seconds), so a message never states a limit in the library's milliseconds.
 */
function checkFlags(options: ServerOptions): void {
  try {
    checkOptions(options);
  } catch (err) {
    throw new UsageError(inFlagTerms((err as Error).message, FLAG_TERMS));
  }
}

interface Parsed {
  options: ServerOptions;
  quiet: boolean;
  logFormat: LogFormat;
}

function parse(argv: string[]): Parsed | 'help' | 'version' {
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
      'accept-key-file': { type: 'string', multiple: true },
      'key-size': { type: 'string' },
      upstream: { type: 'string' },
      'upstream-key': { type: 'string' },
      'echo-delay': { type: 'string' },
      'body-limit': { type: 'string' },
      protocol: { type: 'string' },
      'drain-timeout': { type: 'string' },
      'max-concurrent': { type: 'string' },
      'upstream-timeout': { type: 'string' },
      'headers-timeout': { type: 'string' },
      'request-timeout': { type: 'string' },
      'keep-alive-timeout': { type: 'string' },
      'stream-stall-timeout': { type: 'string' },
      metrics: { type: 'string' },
      'metrics-host': { type: 'string' },
      'metrics-port': { type: 'string' },
      'log-format': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  if (values.version) return 'version';
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  // Set but empty (a deployment's secret that did not arrive): refused, never a router open to all.
  if (values['api-key'] === undefined && process.env.NOMYO_SERVER_API_KEY === '') {
    throw new UsageError('NOMYO_SERVER_API_KEY is empty: give the API key, or unset it for a router that needs none');
  }
  if (values['upstream-key'] !== undefined && values.upstream === undefined) throw new UsageError('--upstream-key is for an --upstream: give --upstream with it');
  if (values['key-file'] !== undefined) checkKeyFileFlag('key-file', values['key-file'], false);
  for (const file of values['accept-key-file'] ?? []) checkKeyFileFlag('accept-key-file', file, true);
  const options: ServerOptions = {
    host: values.host,
    port: integer('port', values.port),
    apiKey: values['api-key'] ?? process.env.NOMYO_SERVER_API_KEY,
    keyFile: values['key-file'],
    acceptKeyFiles: values['accept-key-file'],
    keySize: integer('key-size', values['key-size']),
    upstream: values.upstream,
    upstreamKey: values['upstream-key'] ?? upstreamKeyFromEnv(values.upstream),
    echoDelayMs: integer('echo-delay', values['echo-delay']),
    bodyLimit: integer('body-limit', values['body-limit']),
    protocol: protocolVersion(values.protocol),
    drainTimeoutMs: seconds('drain-timeout', values['drain-timeout']),
    maxConcurrent: integer('max-concurrent', values['max-concurrent']),
    upstreamTimeoutMs: seconds('upstream-timeout', values['upstream-timeout'], 1),
    headersTimeoutMs: seconds('headers-timeout', values['headers-timeout']),
    requestTimeoutMs: seconds('request-timeout', values['request-timeout']),
    keepAliveTimeoutMs: seconds('keep-alive-timeout', values['keep-alive-timeout']),
    streamStallTimeoutMs: seconds('stream-stall-timeout', values['stream-stall-timeout']),
    metrics: oneOf('metrics', values.metrics, ['on', 'off'] as const) !== 'off',
    metricsHost: values['metrics-host'],
    metricsPort: integer('metrics-port', values['metrics-port']),
  };
  if (values['tls-cert'] !== undefined && values['tls-key'] !== undefined) {
    options.tls = { cert: readFlagFile('tls-cert', values['tls-cert']).toString('utf8'), key: readFlagFile('tls-key', values['tls-key']) };
  }
  checkFlags(options);
  return { options, quiet: values.quiet ?? false, logFormat: oneOf('log-format', values['log-format'], LOG_FORMATS) ?? 'text' };
}

/** This package's version, from its package.json beside dist/ (and src/). */
function packageVersion(): string {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : 'unknown';
}

/** How a signal is reported in an exit code: 128 + its number. */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

async function main(): Promise<void> {
  // Signals are ours from the first moment. One during startup ends the process at once, before it
  // serves, without a half-written key file: by the signal itself, raised again with its default
  // action, since exit() would wait for a file read that may never end (a FIFO, a stale mount).
  let stopSignal: NodeJS.Signals | undefined;
  let server: NomyoServer | undefined;
  let say = (_level: LogEvent['level'], message: string) => void process.stderr.write(`${message}\n`);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal) process.exit(SIGNAL_EXIT[signal] ?? 1); // a second signal: the operator insists
    stopSignal = signal;
    if (!server) {
      removePartialKeyFiles();
      say('info', `${signal} during startup: exiting`);
      process.removeAllListeners(signal);
      return void process.kill(process.pid, signal);
    }
    say('info', `${signal}: shutting down`);
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`nomyo-server: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed === 'help' || parsed === 'version') {
    process.stdout.write(parsed === 'help' ? USAGE : `${packageVersion()}\n`);
    return;
  }
  const { options, quiet, logFormat } = parsed;
  // The CLI's own lines: as they always were in text, JSON objects like the library's events in json.
  if (logFormat === 'json') say = (level, message) => void process.stderr.write(formatLogEvent({ level, message }, logFormat));
  options.onLog = (event) => {
    if (!quiet || event.level !== 'info') process.stderr.write(formatLogEvent(event, logFormat));
  };
  let started: NomyoServer;
  try {
    started = await createServer(options).listen();
  } catch (err) {
    say('error', `nomyo-server: ${(err as Error).message}`);
    process.exit(1);
  } finally {
    // The TLS context has its own copy of the key by now (or failed to make one).
    if (options.tls?.key instanceof Uint8Array) options.tls.key.fill(0);
  }
  server = started;
  process.stdout.write(`listening on ${server.url}\n`);
  if (options.metricsHost !== undefined || options.metricsPort !== undefined) process.stdout.write(`metrics on ${server.metricsUrl}\n`);
  say(
    'info',
    `server key SHA-256 ${server.fingerprint} (${options.upstream ? `upstream ${options.upstream}` : 'echo model'}, protocol ${options.protocol === 1 ? '1 only' : '1 and 2'})`,
  );
  for (const fingerprint of server.acceptedFingerprints) say('info', `also accepts key SHA-256 ${fingerprint} (not served)`);
}

void main();
