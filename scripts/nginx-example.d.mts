/** Types for nginx-example.mjs, so TypeScript tests can import it. */
export const NGINX_EXAMPLE: URL;

export interface NginxExampleOptions {
  /** `host:port` of each replica. */
  servers: string[];
  /** `host:port` nginx listens on (TLS). */
  listen: string;
  /** PEM files of the certificate nginx presents and its key. */
  tls: { certFile: string; keyFile: string };
  /** A file to log `status "upstream addresses" "upstream statuses"` of each request to. */
  accessLog?: string;
}

/** docs/examples/nginx.conf with this machine's addresses and certificate: the content of an `http` block. */
export function nginxExample(options: NginxExampleOptions): string;
