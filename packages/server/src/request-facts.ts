/**
 * What the router learns of one request as it handles it, for its access log line (a
 * RequestSummary on the request's last LogEvent) and its metrics. Only numbers, our own words and
 * header values that passed their checks: nothing of a body, a key or an Authorization header.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HEADERS, isPayloadId, isSecurityTier, type ProtocolVersion, type SecurityTier } from '@nomyo/core/protocol';
import { header } from './request-headers.js';
import { MAX_LOGGED_PATH_CHARS } from './constants.js';
import type { StreamOutcome } from './answer-stream.js';
import type { RequestSummary, UpstreamReport } from './types.js';

export class RequestFacts {
  /** performance.now() when the request arrived (its headers). */
  readonly arrived = performance.now();
  readonly payloadId: string | null;
  readonly tier: SecurityTier | null;
  /** Set once a secure completion's package is opened. */
  protocol: ProtocolVersion | null = null;
  streamed = false;
  /** How its stream ended, once it has: a stream's status is 200 however it ended. */
  streamOutcome: StreamOutcome | null = null;
  bytesIn = 0;
  bytesOut = 0;
  /** Seconds from arrival to a stream's first record (or its final record, when it has none). */
  firstRecordSeconds: number | undefined;
  /** Filled in by a model that calls an upstream. */
  readonly upstream: UpstreamReport = {};

  constructor(
    readonly method: string,
    readonly path: string,
    headers: IncomingHttpHeaders,
  ) {
    const payloadId = header(headers, HEADERS.payloadId);
    const tier = header(headers, HEADERS.securityTier);
    this.payloadId = payloadId !== undefined && isPayloadId(payloadId) ? payloadId : null;
    this.tier = tier !== undefined && isSecurityTier(tier) ? tier : null;
  }

  /** The path as its log line holds it: past {@link MAX_LOGGED_PATH_CHARS}, its start and its length. */
  get loggedPath(): string {
    if (this.path.length <= MAX_LOGGED_PATH_CHARS) return this.path;
    return `${this.path.slice(0, MAX_LOGGED_PATH_CHARS)}…(${this.path.length} characters)`;
  }

  /** Told once a stream's first record (or final record) is on its way. */
  firstRecord(): void {
    this.firstRecordSeconds ??= (performance.now() - this.arrived) / 1000;
  }

  summary(status: number): RequestSummary {
    return {
      time: new Date().toISOString(),
      method: this.method,
      path: this.loggedPath,
      payload_id: this.payloadId,
      protocol: this.protocol,
      tier: this.tier,
      streamed: this.streamed,
      stream_outcome: this.streamOutcome,
      status,
      duration_ms: Number((performance.now() - this.arrived).toFixed(3)),
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
      upstream_status: this.upstream.status ?? null,
    };
  }
}
