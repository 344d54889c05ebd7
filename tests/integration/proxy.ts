/**
 * A tiny intercepting HTTP proxy for the hostile-intermediary tests: what a TLS-terminating gateway
 * can do. It forwards every request to the router and hands each request and answer to the test's
 * hooks on the way, whole (bodies buffered), so a hook can read, rewrite, hold or replace anything.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request on its way to the router: hooks may change the headers and the body. */
export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  /** Lowercase names, as Node gives them. */
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The router's answer on its way back: hooks may change anything. */
export interface ProxiedAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface ProxyHooks {
  request?(request: ProxiedRequest): void | Promise<void>;
  answer?(answer: ProxiedAnswer, request: ProxiedRequest): void | Promise<void>;
}

export interface Proxy {
  readonly url: string;
  /** Replace freely between requests. */
  hooks: ProxyHooks;
  close(): Promise<void>;
}

// Hop-by-hop headers, and the length the proxy sets itself after any change.
const DROPPED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host']);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name, value]) => value !== undefined && !DROPPED.has(name)));
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function forward(target: URL, request: ProxiedRequest): Promise<ProxiedAnswer> {
  return new Promise((resolve, reject) => {
    const out = http.request(
      new URL(request.path, target),
      { method: request.method, headers: { ...forwardable(request.headers), 'content-length': String(request.body.length) } },
      (res) => void readAll(res).then((body) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body }), reject),
    );
    out.on('error', reject);
    out.end(request.body);
  });
}

/** Starts a proxy on loopback in front of `target` (the router's origin). */
export async function startProxy(target: string, hooks: ProxyHooks = {}): Promise<Proxy> {
  const proxy = { hooks } as Proxy;
  const server = http.createServer((req, res) => {
    void (async () => {
      const request: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers }, body: await readAll(req) };
      await proxy.hooks.request?.(request);
      const answer = await forward(new URL(target), request);
      await proxy.hooks.answer?.(answer, request);
      res.writeHead(answer.status, { ...forwardable(answer.headers), 'content-length': String(answer.body.length) });
      res.end(answer.body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}
