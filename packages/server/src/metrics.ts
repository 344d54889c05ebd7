/**
 * The router's metrics, in the Prometheus text format, with prom-client. Each server has a registry
 * of its own (several servers in one process, as in tests, never collide); Node.js's process metrics
 * (collectDefaultMetrics) are the process's, so they live in one registry per process, made with the
 * first server that has metrics, and are scraped with each server's own. Labels are our own words
 * and numbers only: protocol version, status, streamed or not, how a stream ended, an upstream
 * failure's kind. Never a payload id, a path a client made up, or anything of a body.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StreamOutcome } from './answer-stream.js';
import type { RequestFacts } from './request-facts.js';
import type { UpstreamReport } from './types.js';
import { whenRequestEnds } from './response-end.js';

export const METRICS_PATH = '/metrics';

/** Seconds: from a fast key response to a long streamed answer. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const FIRST_RECORD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

let processRegistry: Registry | undefined;

export class RouterMetrics {
  readonly #registry = new Registry();
  readonly #process: Registry;
  readonly #requests = new Counter({
    name: 'nomyo_requests_total',
    help: 'Requests answered, by protocol version of the opened package ("none" for anything else), status and whether the answer streamed.',
    labelNames: ['protocol', 'status', 'streamed'] as const,
    registers: [this.#registry],
  });
  readonly #inFlight = new Gauge({ name: 'nomyo_requests_in_flight', help: 'Requests being handled now (streams included).', registers: [this.#registry] });
  readonly #streams = new Gauge({ name: 'nomyo_streams_in_flight', help: 'Streamed answers being written now.', registers: [this.#registry] });
  // A counter of its own, not a label on nomyo_requests_total: a stream's status is 200 however it
  // ended, and the series dashboards already query stay as they were.
  readonly #streamsEnded = new Counter({
    name: 'nomyo_streams_total',
    help: 'Streamed answers that ended: complete, error (their final record carried one), or aborted (cut off before their final record: the client gone, or stalled).',
    labelNames: ['outcome'] as const,
    registers: [this.#registry],
  });
  readonly #duration = new Histogram({
    name: 'nomyo_request_duration_seconds',
    help: 'From a request’s arrival to the end of its response (a stream’s final record).',
    labelNames: ['protocol', 'streamed'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.#registry],
  });
  readonly #firstRecord = new Histogram({
    name: 'nomyo_stream_first_record_seconds',
    help: 'From a streamed request’s arrival to its first record (or its final record, when it has none).',
    buckets: FIRST_RECORD_BUCKETS,
    registers: [this.#registry],
  });
  readonly #bytesIn = new Counter({ name: 'nomyo_received_bytes_total', help: 'Request body bytes received.', registers: [this.#registry] });
  readonly #bytesOut = new Counter({ name: 'nomyo_sent_bytes_total', help: 'Response body bytes sent (a stream’s events, heartbeats included).', registers: [this.#registry] });
  readonly #upstreamErrors = new Counter({
    name: 'nomyo_upstream_errors_total',
    help: 'Upstream calls that failed: the upstream answered an error (status), its connection failed or broke off (connection), it was too slow (timeout), or it answered with what is no completion or chunk (malformed).',
    labelNames: ['kind'] as const,
    registers: [this.#registry],
  });

  constructor() {
    this.#process = processRegistry ??= processMetrics();
    for (const kind of ['status', 'connection', 'timeout', 'malformed'] as const satisfies readonly NonNullable<UpstreamReport['failure']>[]) this.#upstreamErrors.inc({ kind }, 0);
    for (const outcome of ['complete', 'error', 'aborted'] as const satisfies readonly StreamOutcome[]) this.#streamsEnded.inc({ outcome }, 0);
  }

  /** Counts the request of `res` in flight until its response ends. */
  requestStarted(res: http.ServerResponse): void {
    this.#inFlight.inc();
    whenRequestEnds(res, () => this.#inFlight.dec());
  }

  /** Counts a stream in flight; the function returned is told how it ended. */
  streamStarted(): (outcome: StreamOutcome) => void {
    this.#streams.inc();
    return (outcome) => {
      this.#streams.dec();
      this.#streamsEnded.inc({ outcome });
    };
  }

  /** A request whose response has ended with `status` (0: dropped). */
  requestEnded(facts: RequestFacts, status: number): void {
    const protocol = facts.protocol === null ? 'none' : String(facts.protocol);
    const streamed = String(facts.streamed);
    this.#requests.inc({ protocol, status: String(status), streamed });
    this.#duration.observe({ protocol, streamed }, (performance.now() - facts.arrived) / 1000);
    if (facts.firstRecordSeconds !== undefined) this.#firstRecord.observe(facts.firstRecordSeconds);
    this.#bytesIn.inc(facts.bytesIn);
    this.#bytesOut.inc(facts.bytesOut);
    this.upstreamFailed(facts.upstream);
  }

  /** A request Node refused before it came to the router (client-error.ts): a 400, 408, 413 or 431. */
  refusedByNode(status: number): void {
    this.#requests.inc({ protocol: 'none', status: String(status), streamed: 'false' });
  }

  upstreamFailed(report: UpstreamReport): void {
    if (report.failure) this.#upstreamErrors.inc({ kind: report.failure });
  }

  /** The exposition: this server's metrics and the process's. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    const [own, process] = await Promise.all([this.#registry.metrics(), this.#process.metrics()]);
    return { contentType: this.#registry.contentType, text: own.endsWith('\n') ? own + process : `${own}\n${process}` };
  }
}

function processMetrics(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** A listener of its own for /metrics (`--metrics-host`/`--metrics-port`): 404 for anything else. */
export function metricsListener(metrics: RouterMetrics): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split(/[?#]/, 1)[0];
    if (path !== METRICS_PATH) return void res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"detail":"not found"}');
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { 'Content-Type': 'application/json', Allow: 'GET' }).end('{"detail":"method not allowed"}');
    metrics.exposition().then(
      ({ contentType, text }) => res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"detail":"internal server error"}'),
    );
  });
}
