/**
 * nginx for `pnpm bench router`, as the replica test runs it (tests/nginx/nginx.ts): the machine's
 * own nginx as the current user from a temp prefix, with docs/examples/nginx.conf (through
 * scripts/nginx-example.mjs) in front of the given replicas, TLS with a throwaway self-signed
 * certificate for 127.0.0.1 made with the openssl CLI.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findNeed } from '../../scripts/system-packages.mjs';
import { nginxExample } from '../../scripts/nginx-example.mjs';

/** Where nginx is, or why it is not (the install command). */
export const nginxFound = () => findNeed('nginx');

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** Starts nginx in front of `replicas` (their `http://host:port` URLs). Resolves to its URL, its master's pid, the CA to trust, and `close()`. */
export async function startNginx(replicas) {
  const found = nginxFound();
  if (found.problem) throw new Error(found.problem);
  const dir = mkdtempSync(path.join(tmpdir(), 'nomyo-bench-nginx-'));
  const at = (name) => path.join(dir, name);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', at('tls.key'), '-out', at('tls.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const body = nginxExample({ servers: replicas.map((url) => new URL(url).host), listen: `127.0.0.1:${port}`, tls: { certFile: at('tls.pem'), keyFile: at('tls.key') } });
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  writeFileSync(at('nginx.conf'), `daemon off;
master_process on;
worker_processes 1;
${user}pid ${at('nginx.pid')};
error_log ${at('error.log')} warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path ${at('client_body_temp')};
    proxy_temp_path ${at('proxy_temp')};
    fastcgi_temp_path ${at('fastcgi_temp')};
    uwsgi_temp_path ${at('uwsgi_temp')};
    scgi_temp_path ${at('scgi_temp')};
${body}
}
`);
  const child = spawn(found.paths.nginx, ['-p', `${dir}/`, '-c', at('nginx.conf'), '-e', at('error.log')], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const deadline = Date.now() + 10_000;
  while (!existsSync(at('nginx.pid'))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = existsSync(at('error.log')) ? readFileSync(at('error.log'), 'utf8') : '';
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${log.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `https://127.0.0.1:${port}`,
    pid: child.pid,
    ca: readFileSync(at('tls.pem')),
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
