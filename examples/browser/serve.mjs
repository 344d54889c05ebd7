#!/usr/bin/env node
/**
 * Serves the browser example and, run directly, a local reference router with the echo model:
 *
 *   node examples/browser/serve.mjs [--port 8000] [--router-port 12434] [--echo-delay 60]
 *
 * The router's echo model streams its answer one word every `--echo-delay` ms, so that a streamed
 * answer can be seen arriving token by token.
 *
 * The page loads @nomyo/core's built ES modules unchanged from /core/ (run `pnpm build` first).
 * Tests import startExample() and may hand it a bundled core to serve instead.
 */
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const coreDist = path.resolve(here, '../../packages/core/dist');
const PAGES = { '/': 'index.html', '/index.html': 'index.html', '/main.js': 'main.js' };
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** Starts the static server. `coreBundle` (a JS string) replaces /core/index.js when given. */
export async function startExample({ host = '127.0.0.1', port = 0, coreBundle } = {}) {
  if (coreBundle === undefined && !existsSync(path.join(coreDist, 'index.js'))) {
    throw new Error(`${coreDist}/index.js is missing: build @nomyo/core first (pnpm build)`);
  }
  const server = createServer(async (req, res) => {
    try {
      const { pathname } = new URL(req.url ?? '/', 'http://localhost');
      const file = fileFor(pathname, coreBundle);
      if (req.method !== 'GET' || file === undefined) return send(res, 404, 'text/plain', 'not found');
      const body = typeof file === 'string' ? await readFile(file) : file.text;
      const type = typeof file === 'string' ? TYPES[path.extname(file)] : TYPES['.js'];
      send(res, 200, type ?? 'application/octet-stream', body);
    } catch {
      send(res, 404, 'text/plain', 'not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: bound } = server.address();
  return {
    url: `http://${host}:${bound}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // browsers keep connections alive; do not wait for them
      }),
  };
}

/** A file path, an in-memory `{ text }`, or undefined. Only the page and core's .js files, nothing else. */
function fileFor(pathname, coreBundle) {
  if (PAGES[pathname]) return path.join(here, PAGES[pathname]);
  if (!pathname.startsWith('/core/') || !pathname.endsWith('.js')) return undefined;
  if (coreBundle !== undefined) return pathname === '/core/index.js' ? { text: coreBundle } : undefined;
  const file = path.resolve(coreDist, '.' + decodeURIComponent(pathname.slice('/core'.length)));
  return file.startsWith(coreDist + path.sep) ? file : undefined;
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function main() {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const { startServer } = await import('@nomyo/server');
  const router = await startServer({ host: '127.0.0.1', port: option('--router-port', 12434), echoDelayMs: option('--echo-delay', 60) });
  const page = await startExample({ port: option('--port', 8000) });
  process.stdout.write(`reference router (echo model) on ${router.url}\n`);
  process.stdout.write(`open ${page.url}/?router=${encodeURIComponent(router.url)}\n`);
  const stop = async () => {
    await Promise.all([page.close(), router.close()]);
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
