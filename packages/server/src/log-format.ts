/**
 * How the CLI writes the library's log events to stderr (`--log-format`). `text`: one line per event,
 * `<level> <message> key=value...`, as it always was. `json`: one JSON object per line; a request's
 * last event is its access log line (time, method, path, payload_id, protocol, tier, streamed,
 * stream_outcome, status, duration_ms, bytes_in, bytes_out, upstream_status), any other event
 * `{time, level, message}` and its fields (a stalled stream's `seq` and `payload_id`, which match it
 * with its request's line). The events hold no plaintext, key, API key or Authorization header
 * (types.ts), and neither does anything added here.
 */
import type { LogEvent } from './types.js';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `event` as one line of `format`, newline included. */
export function formatLogEvent(event: LogEvent, format: LogFormat): string {
  if (format === 'json') {
    if (!event.request) return `${JSON.stringify({ time: new Date().toISOString(), level: event.level, message: event.message, ...event.fields })}\n`;
    const { time, ...request } = event.request;
    return `${JSON.stringify({ time, level: event.level, ...request })}\n`;
  }
  const fields = Object.entries(event.fields ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${event.level} ${event.message}${fields ? ` ${fields}` : ''}\n`;
}
