/**
 * The CLI's log lines (`--log-format`): text as it always was, JSON a request's summary as it is, and
 * any other event's fields with it (what matches a stream's stall with its request's line).
 */
import { describe, expect, it } from 'vitest';
import type { LogEvent, RequestSummary } from '../src/index.js';
import { formatLogEvent } from '../src/log-format.js';

const summary: RequestSummary = {
  time: '2026-12-06T14:05:31.866Z',
  method: 'POST',
  path: '/v1/chat/secure_completion',
  payload_id: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
  protocol: 2,
  tier: null,
  streamed: true,
  stream_outcome: 'aborted',
  status: 200,
  duration_ms: 812.4,
  bytes_in: 1456,
  bytes_out: 9311,
  upstream_status: 200,
};

describe('formatLogEvent', () => {
  const request: LogEvent = { level: 'warn', message: 'POST /v1/chat/secure_completion 200 aborted', fields: { seq: 3, status: 200, ms: 812.4 }, request: summary };
  const stall: LogEvent = { level: 'warn', message: "a stream's client took nothing for 400 ms: its connection was closed", fields: { seq: 3, payload_id: summary.payload_id! } };

  it('text: `<level> <message> key=value...`, fields left out when undefined', () => {
    expect(formatLogEvent(request, 'text')).toBe('warn POST /v1/chat/secure_completion 200 aborted seq=3 status=200 ms=812.4\n');
    expect(formatLogEvent({ level: 'info', message: 'hello', fields: { seq: undefined } }, 'text')).toBe('info hello\n');
  });

  it("json: a request's line is its summary, with its level", () => {
    expect(JSON.parse(formatLogEvent(request, 'json'))).toEqual({ level: 'warn', ...summary });
  });

  it("json: any other event is {time, level, message} with its fields: a stall's seq and payload_id", () => {
    const line = JSON.parse(formatLogEvent(stall, 'json')) as Record<string, unknown>;
    expect(line).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: 'warn', message: stall.message, seq: 3, payload_id: summary.payload_id });
    expect(JSON.parse(formatLogEvent({ level: 'info', message: 'hello' }, 'json'))).toEqual({ time: expect.any(String), level: 'info', message: 'hello' });
  });
});
