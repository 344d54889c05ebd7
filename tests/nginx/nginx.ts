/**
 * A real nginx (the machine's own: scripts/system-packages.mjs finds it) in front of a router, run
 * as the current user from a fresh temp prefix: its own nginx.conf, pid file, logs and temp paths,
 * a free loopback port, TLS terminated with the test's certificate. The proxy settings are the ones
 * a README would recommend for a router, with nginx's defaults for everything else (response
 * buffering stays on): a stream must get through because the router says `X-Accel-Buffering: no`.
 * A missing nginx is a failure whose message has the install command, never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findNeed } from '../../scripts/system-packages.mjs';
import { freePort } from '@nomyo/test-support/ports';

export interface NginxOptions {
  /** The router behind nginx: `http://127.0.0.1:PORT`. */
  router: string;
  /** PEM files of the certificate nginx presents and its key. */
  tls: { certFile: string; keyFile: string };
  /** More directives for the proxying location, e.g. `proxy_ignore_headers X-Accel-Buffering;`. */
  extraDirectives?: string[];
  /** Clients may speak HTTP/2 to nginx (`listen … ssl http2`); nginx still speaks HTTP/1.1 to the router. */
  http2?: boolean;
}

/** nginx with a configuration of the test's own (the `http` block's content), e.g. several replicas. */
export interface NginxConfigOptions {
  /** The `http` block's content for nginx listening on `port`; `dir` is nginx's temp prefix (for logs). */
  config: (at: { port: number; dir: string }) => string;
}

export interface Nginx {
  /** `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** What nginx wrote to its error log so far (for a failing test's message). */
  errorLog(): string;
  /** What nginx wrote to its access log so far (the default format: each request line with its protocol). */
  accessLog(): string;
  /** nginx's temp prefix: its logs, and whatever a `config` of the test's put there. */
  readonly dir: string;
  /** Stops nginx (and waits until it has exited), then removes its temp prefix. */
  close(): Promise<void>;
}

/** The `server` block for `router`, as README.md and docs/examples/nginx.conf have it (only the addresses and paths are the test's). */
function routerServerBlock(port: number, router: URL, { tls, extraDirectives = [], http2 = false }: Omit<NginxOptions, 'router'>): string {
  return `upstream nomyo_router {
    server ${router.host};
    keepalive 32;
}

server {
    listen 127.0.0.1:${port} ssl${http2 ? ' http2' : ''};
    server_name localhost;
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};

    # The router takes bodies up to 64 MiB (--body-limit); nginx's default is 1 MiB.
    client_max_body_size 64m;

    location / {
        proxy_pass http://nomyo_router;
        # HTTP/1.1 with an empty Connection header: connections to the router are kept alive.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # A whole (unstreamed) answer comes when the model has finished, which can take minutes;
        # a stream sends a heartbeat after every 15 s of silence.
        proxy_read_timeout 600s;
        proxy_send_timeout 600s;${extraDirectives.map((d) => `\n        ${d}`).join('')}
    }
}`;
}

function nginxConf(dir: string, body: string): string {
  const at = (name: string) => path.join(dir, name);
  // As root the master would hand its worker to `nobody`, which cannot enter our 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `daemon off;
master_process on;
worker_processes 1;
${user}pid ${at('nginx.pid')};
error_log ${at('error.log')} notice;

events {
    # Each proxied request holds two connections, and kept-alive ones to the routers wait besides:
    # room for a load test's 32 clients at once.
    worker_connections 512;
}

http {
    access_log ${at('access.log')};
    client_body_temp_path ${at('client_body_temp')};
    proxy_temp_path ${at('proxy_temp')};
    fastcgi_temp_path ${at('fastcgi_temp')};
    uwsgi_temp_path ${at('uwsgi_temp')};
    scgi_temp_path ${at('scgi_temp')};

${body.replace(/^/gm, '    ')}
}
`;
}

/**
 * Starts nginx in front of `options.router`, or with `options.config`. Throws the install command
 * when nginx is not installed.
 */
export async function startNginx(options: NginxOptions | NginxConfigOptions): Promise<Nginx> {
  const body = (port: number, dir: string): string =>
    'config' in options ? options.config({ port, dir }) : routerServerBlock(port, new URL(options.router), options);
  const found = findNeed('nginx');
  if (found.problem) throw new Error(found.problem);
  const binary = found.paths.nginx!;
  const dir = mkdtempSync(path.join(tmpdir(), 'nomyo-nginx-'));
  const log = (name: string) => () => {
    try {
      return readFileSync(path.join(dir, name), 'utf8');
    } catch {
      return '';
    }
  };
  const errorLog = log('error.log');
  try {
    // A free port can be taken by someone else before nginx binds it: try again with another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const conf = path.join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConf(dir, body(port, dir)));
      // -e: the error log from the first line on, not the compiled-in /var/log/nginx path a user cannot write.
      const child = spawn(binary, ['-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const exited = once(child, 'exit');
      if (await started(path.join(dir, 'nginx.pid'), exited)) {
        return {
          url: `https://127.0.0.1:${port}`,
          errorLog,
          accessLog: log('access.log'),
          dir,
          close: async () => {
            await stopProcess(child, exited);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      const why = `${stderr}${errorLog()}`;
      if (attempt < 3 && /Address already in use/.test(why)) continue;
      throw new Error(`nginx did not start: ${why.trim() || 'no message'}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Whether nginx is serving before it exits (or 10 s pass). Its pid file is written once the
 * configuration is read and every listening socket is bound: a connection is queued from then on.
 */
async function started(pidFile: string, exited: Promise<unknown>): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 10_000;
  while (!gone && Date.now() < deadline) {
    if (existsSync(pidFile)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** SIGTERM is nginx's fast shutdown (open streams are cut, not waited for); SIGKILL if it hangs. */
async function stopProcess(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
