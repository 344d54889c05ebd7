/**
 * GET /metrics: Prometheus text from prom-client, a registry per server (two in one process do not
 * collide), labels of our own words only, streams counted by how they ended, a listener of its own
 * with metricsPort, off with `metrics: false`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SecureCompletionClient } from '@nomyo/core';
import { HttpError, startServer, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE, post } from './helpers.js';

const servers: NomyoServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ drainTimeoutMs: 0 })));
});

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<NomyoServer> {
  const s = await startServer({ keyFile: VECTOR_KEY_FILE, ...options });
  servers.push(s);
  return s;
}

/** The value of one sample line, e.g. `nomyo_requests_total{protocol="2",status="200",streamed="true"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

describe('GET /metrics', () => {
  it('counts requests by protocol, status and streamed; bytes, durations, time to first record; process metrics; never a payload id', async () => {
    const s = await start({ apiKey: 'sk-metrics-secret' });
    expect(s.metricsUrl).toBe(`${s.url}/metrics`);
    const auth = { Authorization: 'Bearer sk-metrics-secret' };
    const v2 = new SecureCompletionClient({ routerUrl: s.url, allowHttp: true });
    const v1 = new SecureCompletionClient({ routerUrl: s.url, allowHttp: true, protocol: 1, keySize: 2048 });
    const payloadId = 'metrics-payload-id-0001';
    const chat = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });
    const key = { apiKey: 'sk-metrics-secret' };
    await v2.sendSecureRequest(chat('hello'), payloadId, key);
    await v1.sendSecureRequest(chat('hello'), crypto.randomUUID(), key);
    for await (const _ of await v2.streamSecureRequest(chat('a b c'), crypto.randomUUID(), key));
    expect((await post(s.url, 'garbage', { ...auth, 'X-Payload-ID': payloadId })).status).toBe(400);
    expect((await post(s.url, 'garbage', { Authorization: 'Bearer wrong' })).status).toBe(401);

    const text = await scrape(s.metricsUrl!);
    expect(sample(text, 'nomyo_requests_total{protocol="2",status="200",streamed="false"}')).toBe(1);
    expect(sample(text, 'nomyo_requests_total{protocol="1",status="200",streamed="false"}')).toBe(1);
    expect(sample(text, 'nomyo_requests_total{protocol="2",status="200",streamed="true"}')).toBe(1);
    expect(sample(text, 'nomyo_requests_total{protocol="none",status="400",streamed="false"}')).toBe(1);
    expect(sample(text, 'nomyo_requests_total{protocol="none",status="401",streamed="false"}')).toBe(1);
    expect(sample(text, 'nomyo_requests_total{protocol="none",status="200",streamed="false"}')).toBeGreaterThanOrEqual(1); // the key
    expect(sample(text, 'nomyo_requests_in_flight')).toBe(1); // this scrape
    expect(sample(text, 'nomyo_streams_in_flight')).toBe(0);
    expect(sample(text, 'nomyo_streams_total{outcome="complete"}')).toBe(1);
    expect(sample(text, 'nomyo_streams_total{outcome="aborted"}')).toBe(0);
    expect(sample(text, 'nomyo_stream_first_record_seconds_count')).toBe(1);
    expect(sample(text, 'nomyo_request_duration_seconds_count{protocol="2",streamed="true"}')).toBe(1);
    expect(sample(text, 'nomyo_received_bytes_total')).toBeGreaterThan(1000);
    expect(sample(text, 'nomyo_sent_bytes_total')).toBeGreaterThan(1000);
    expect(sample(text, 'nomyo_upstream_errors_total{kind="timeout"}')).toBe(0);
    // Node.js's process metrics.
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    // Labels are our own words: no payload id, no key, nothing of a body.
    expect(text).not.toContain(payloadId);
    expect(text).not.toContain('sk-metrics-secret');
    expect(text).not.toContain('hello');
    expect(text).not.toContain('garbage');
    // Not behind the API key, and nothing secret in it.
    expect((await fetch(s.metricsUrl!, { method: 'POST' })).status).toBe(405);
  });

  it('counts streams by how they ended: complete, error (in the final record), aborted (cut off); nomyo_requests_total counts them as before', async () => {
    const chunk = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
    const s = await start({
      model: async function* (request, ctx) {
        const prompt = (request.messages[0] as { content: string }).content;
        yield chunk('first ');
        if (prompt === 'error') throw new HttpError(502, 'the inference backend broke off');
        // 'forever': until the client goes away.
        while (prompt === 'forever' && !ctx.signal.aborted) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          yield chunk('more ');
        }
      },
    });
    const client = new SecureCompletionClient({ routerUrl: s.url, allowHttp: true, maxRetries: 0 });
    const chat = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });
    for await (const _ of await client.streamSecureRequest(chat('complete')));
    await expect((async () => {
      for await (const _ of await client.streamSecureRequest(chat('error')));
    })()).rejects.toMatchObject({ status: 502, sealed: true });
    let n = 0;
    for await (const _ of await client.streamSecureRequest(chat('forever'))) if (++n === 3) break;

    await expect.poll(async () => sample(await scrape(s.metricsUrl!), 'nomyo_streams_total{outcome="aborted"}')).toBe(1);
    const text = await scrape(s.metricsUrl!);
    expect(sample(text, 'nomyo_streams_total{outcome="complete"}')).toBe(1);
    expect(sample(text, 'nomyo_streams_total{outcome="error"}')).toBe(1);
    expect(sample(text, 'nomyo_streams_in_flight')).toBe(0);
    // The series dashboards already query are as they were: a stream's status is 200 however it ended.
    expect(sample(text, 'nomyo_requests_total{protocol="2",status="200",streamed="true"}')).toBe(3);
    expect(sample(text, 'nomyo_request_duration_seconds_count{protocol="2",streamed="true"}')).toBe(3);
  });

  it('each server has its own registry', async () => {
    const a = await start();
    const b = await start();
    await fetch(a.url + '/pki/public_key');
    await fetch(a.url + '/pki/public_key');
    const series = 'nomyo_requests_total{protocol="none",status="200",streamed="false"}';
    expect(sample(await scrape(a.metricsUrl!), series)).toBe(2);
    expect(sample(await scrape(b.metricsUrl!), series)).toBeUndefined();
  });

  it('metricsPort puts /metrics on a listener of its own, and the main one answers 404 for it; metrics: false turns it off', async () => {
    const s = await start({ metricsPort: 0 });
    expect(s.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(s.metricsUrl!).port).not.toBe(String(s.port));
    expect((await fetch(s.url + '/metrics')).status).toBe(404);
    expect(await scrape(s.metricsUrl!)).toContain('nomyo_requests_total');
    expect((await fetch(new URL('/healthz', s.metricsUrl!))).status).toBe(404);
    const off = await start({ metrics: false });
    expect(off.metricsUrl).toBeUndefined();
    expect((await fetch(off.url + '/metrics')).status).toBe(404);
  });

  it('counts an upstream answering with what is no completion or chunk as malformed: not JSON, refused by the envelope, a chunk too large; a custom model\'s own refusal is no upstream error', async () => {
    let mode: 'not json' | 'no choices' | 'huge chunk' = 'not json';
    const chunk = (content: string) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    const upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (mode === 'not json') res.writeHead(200, { 'Content-Type': 'application/json' }).end('not json');
        else if (mode === 'no choices') res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"object":"chat.completion"}');
        else res.writeHead(200, { 'Content-Type': 'text/event-stream' }).end(chunk('x'.repeat(1_100_000)) + 'data: [DONE]\n\n');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      const s = await start({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1` });
      const client = new SecureCompletionClient({ routerUrl: s.url, allowHttp: true, maxRetries: 0 });
      const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
      await expect(client.sendSecureRequest(chat)).rejects.toMatchObject({ status: 502 });
      mode = 'no choices';
      await expect(client.sendSecureRequest(chat)).rejects.toMatchObject({ status: 502 });
      mode = 'huge chunk';
      const stream = await client.streamSecureRequest({ ...chat, stream: true });
      await expect((async () => { for await (const _ of stream); })()).rejects.toMatchObject({ status: 502, sealed: true });
      const text = await scrape(s.metricsUrl!);
      expect(sample(text, 'nomyo_upstream_errors_total{kind="malformed"}')).toBe(3);
      expect(sample(text, 'nomyo_upstream_errors_total{kind="status"}')).toBe(0);

      // A custom model's chunk refused the same way: no upstream was called, none failed.
      const own = await start({ model: async function* () { yield { object: 'chat.completion.chunk', choices: 'none' }; } });
      const ownStream = await new SecureCompletionClient({ routerUrl: own.url, allowHttp: true, maxRetries: 0 }).streamSecureRequest({ ...chat, stream: true });
      await expect((async () => { for await (const _ of ownStream); })()).rejects.toMatchObject({ status: 502 });
      expect(sample(await scrape(own.metricsUrl!), 'nomyo_upstream_errors_total{kind="malformed"}')).toBe(0);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it('counts upstream errors by kind: status, connection, timeout', async () => {
    let mode: 'status' | 'hang' | 'break' = 'status';
    const upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (mode === 'status') res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"error":{"message":"boom"}}');
        else if (mode === 'break') res.socket?.destroy();
        // hang: never answers
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      const s = await start({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`, upstreamTimeoutMs: 200 });
      const client = new SecureCompletionClient({ routerUrl: s.url, allowHttp: true, maxRetries: 0 });
      const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
      await expect(client.sendSecureRequest(chat)).rejects.toMatchObject({ status: 502 });
      mode = 'break'; // after the request reached it: 502 (503 is for an upstream never reached)
      await expect(client.sendSecureRequest(chat)).rejects.toMatchObject({ status: 502 });
      mode = 'hang';
      await expect(client.sendSecureRequest(chat)).rejects.toMatchObject({ status: 504 });
      const text = await scrape(s.metricsUrl!);
      expect(sample(text, 'nomyo_upstream_errors_total{kind="status"}')).toBe(1);
      expect(sample(text, 'nomyo_upstream_errors_total{kind="connection"}')).toBe(1);
      expect(sample(text, 'nomyo_upstream_errors_total{kind="timeout"}')).toBe(1);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });
});
