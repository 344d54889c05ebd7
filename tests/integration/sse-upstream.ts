/**
 * A scriptable OpenAI-compatible upstream on loopback for the streaming tests: each request to
 * POST /v1/chat/completions is handed, parsed, to the test's script, which writes whatever a real
 * upstream might (SSE chunks, comments, an error event, a whole JSON completion, a broken connection).
 * It records each request and whether its connection closed before the script finished.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamRequest {
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
  /** Set when the router closed the connection before the script had ended the response. */
  closedEarly: boolean;
}

export type UpstreamScript = (request: UpstreamRequest, res: http.ServerResponse) => void | Promise<void>;

export interface ScriptedUpstream {
  /** The base URL to give the router (`…/v1`). */
  readonly url: string;
  script: UpstreamScript;
  readonly requests: UpstreamRequest[];
  close(): Promise<void>;
}

/** A chat.completion.chunk as upstreams send them. */
export function chunk(delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'chatcmpl-up', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'up-model', choices: [{ index: 0, delta, finish_reason: finish }], ...extra };
}

export const event = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`;
export const DONE = 'data: [DONE]\n\n';

/** Starts the SSE head of a response: what every streaming upstream sends first. */
export function startEvents(res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
}

/** The words streamed one chunk each, role first, finish last, then [DONE]. */
export function wordsScript(words: string[], delayMs = 0): UpstreamScript {
  return async (_request, res) => {
    startEvents(res);
    res.write(event(chunk({ role: 'assistant', content: '' })));
    for (const word of words) {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (res.destroyed) return;
      res.write(event(chunk({ content: word })));
    }
    res.write(event(chunk({}, 'stop')));
    res.end(DONE);
  };
}

export async function startUpstream(script: UpstreamScript = wordsScript(['hello ', 'world'])): Promise<ScriptedUpstream> {
  const requests: UpstreamRequest[] = [];
  const upstream = { script, requests } as ScriptedUpstream;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const request: UpstreamRequest = { body: JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>, headers: req.headers, closedEarly: false };
      requests.push(request);
      res.on('close', () => {
        if (!res.writableEnded) request.closedEarly = true;
      });
      void Promise.resolve(upstream.script(request, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(upstream, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
