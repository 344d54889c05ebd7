/**
 * A request's first and last steps in dispatch.ts. First: counted in flight (for the drain and the
 * metrics), then refused at once, before its body is read, when the router is draining (503,
 * `Connection: close`) or at its `maxConcurrent` limit (503, `Retry-After: 1`); GET /healthz is
 * never refused (it says "draining" itself), nor /metrics by the limit, nor a browser's CORS
 * preflight (OPTIONS): refused, it fails the page's request as a network error with no status, where
 * the request itself gets the 503 the client retries after its Retry-After. Such a refusal is counted
 * in the stats, the metrics and the log, but is not in the request log and no test hook sees it.
 * Last: the request's log event, with its summary, and its metrics.
 */
import type { ServerResponse } from 'node:http';
import { OVERLOADED, OVERLOAD_HEADERS } from './concurrency.js';
import type { DispatchState } from './dispatch.js';
import { DRAIN_HEADERS, SHUTTING_DOWN } from './drain.js';
import { HEALTH_PATH } from './health.js';
import { METRICS_PATH } from './metrics.js';
import type { RequestFacts } from './request-facts.js';
import { detailResponse, writeResponse, type RouterResponse } from './respond.js';
import type { ResponseRecord } from './types.js';

/** Whether the request of `res` goes on to be handled; if not, it has been answered. */
export function admit(state: DispatchState, res: ServerResponse, facts: RequestFacts): boolean {
  state.drain.track(res);
  state.metrics?.requestStarted(res);
  const refusal = refusalOf(state, res, facts);
  if (!refusal) return true;
  state.stats.errors++;
  writeResponse(res, refusal, performance.now() - facts.arrived);
  facts.bytesOut = refusal.body.length;
  requestEnded(state, facts, refusal.status, 'answered');
  return false;
}

function refusalOf(state: DispatchState, res: ServerResponse, { path, method }: RequestFacts): RouterResponse | undefined {
  if (path === HEALTH_PATH || method === 'OPTIONS') return undefined;
  if (state.drain.draining) return detailResponse(503, SHUTTING_DOWN, { ...DRAIN_HEADERS });
  if (path === METRICS_PATH || state.limit.admit(res)) return undefined;
  return detailResponse(503, OVERLOADED, { ...OVERLOAD_HEADERS });
}

/**
 * The request's last log event (with its summary) and its metrics. `status` 0: dropped without a
 * response. Its `ms` field is the summary's duration, as in JSON and the duration histogram (for a
 * stream: to its end, not to its headers as X-Processing-Time-Ms).
 */
export function requestEnded(state: DispatchState, facts: RequestFacts, status: number, outcome: ResponseRecord['outcome'], seq?: number): void {
  state.metrics?.requestEnded(facts, status);
  const summary = facts.summary(status);
  // A stream's status is 200 however it ended: one cut off, or ended by an error, says so.
  const incomplete = summary.stream_outcome !== null && summary.stream_outcome !== 'complete';
  state.emit({
    level: status >= 500 || status === 0 || incomplete ? 'warn' : 'info',
    message: `${facts.method} ${facts.loggedPath} ${status || outcome}${incomplete ? ` ${summary.stream_outcome}` : ''}`,
    fields: { seq, status, ms: summary.duration_ms },
    request: summary,
  });
  state.drain.logged(); // after its event, which close() waits for
}
