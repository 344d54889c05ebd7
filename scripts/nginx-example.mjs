/**
 * docs/examples/nginx.conf made to run on this machine, for the replica test
 * (tests/nginx/replicas.test.ts) and `pnpm bench router`: the same file an operator copies, with
 * only its replicas' addresses, its listening address and its certificate replaced (and, when
 * asked, a log of which replica answered each request). Every replacement must find its line
 * exactly once, so an example whose shape changes fails here instead of being run half-replaced.
 */
import { readFileSync } from 'node:fs';

/** The example's path. */
export const NGINX_EXAMPLE = new URL('../docs/examples/nginx.conf', import.meta.url);

/** `text` with `pattern`'s one match replaced by `by(match)`. */
function once(text, pattern, by) {
  let found = 0;
  const out = text.replace(pattern, (match) => (found++, by(match)));
  if (found !== 1) throw new Error(`docs/examples/nginx.conf: ${pattern} matched ${found} times, expected once`);
  return out;
}

/**
 * The example for `servers` (`host:port` of each replica, in place of its `server` lines, with
 * their parameters), listening on `listen` (`host:port`) with TLS from `tls` (PEM files), and with
 * `accessLog` (a file) written as `status "upstream addresses" "upstream statuses"` per request.
 * The result goes inside an `http` block.
 */
export function nginxExample({ servers, listen, tls, accessLog }) {
  let conf = readFileSync(NGINX_EXAMPLE, 'utf8');
  const serverLine = /^(\s*server )\S+:\d+([^;\n]*;)\n/gm;
  const lines = [...conf.matchAll(serverLine)];
  if (lines.length === 0) throw new Error('docs/examples/nginx.conf: no upstream server lines');
  const [, indent, parameters] = lines[0];
  conf = conf.replace(serverLine, (match) => (match === lines[0][0] ? servers.map((s) => `${indent}${s}${parameters}\n`).join('') : ''));
  conf = once(conf, /^(\s*listen )443 ssl;/m, (match) => match.replace('443', listen));
  conf = once(conf, /^(\s*ssl_certificate )\S+;$/m, (match) => match.replace(/ \S+;$/, ` ${tls.certFile};`));
  conf = once(conf, /^(\s*ssl_certificate_key )\S+;$/m, (match) => match.replace(/ \S+;$/, ` ${tls.keyFile};`));
  if (!accessLog) return conf;
  conf = once(conf, /^(\s*server_name .*;)$/m, (match) => `${match}\n    access_log ${accessLog} nomyo_replicas;`);
  return `log_format nomyo_replicas '$status "$upstream_addr" "$upstream_status"';\n\n${conf}`;
}
