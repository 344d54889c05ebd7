/**
 * A throwaway certificate authority and a leaf certificate for 127.0.0.1, ::1 and localhost, made
 * with the `openssl` CLI in a temp dir. For HTTPS tests of any package: `@nomyo/test-support/tls`.
 *
 * @example
 * ```ts
 * const tls = makeTestCertificates();
 * const server = await startServer({ tls: { cert: tls.certPem, key: tls.keyPem } });
 * // node:https.request(url, { ca: tls.caPem }) or NODE_EXTRA_CA_CERTS=tls.caFile in a child process
 * tls.cleanup();
 * ```
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  /** The temp dir holding every file below. */
  readonly dir: string;
  readonly caPem: string;
  readonly caFile: string;
  /** The leaf certificate (serverAuth, SAN: localhost, 127.0.0.1, ::1). */
  readonly certPem: string;
  readonly certFile: string;
  /** The leaf's private key (PKCS#8 PEM). */
  readonly keyPem: string;
  readonly keyFile: string;
  /** Removes the temp dir. */
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** EC P-256 keys: fast to make, accepted by every TLS stack we test with. Valid for 2 days. */
export function makeTestCertificates(commonName = 'localhost'): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'nomyo-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=NOMYO test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(dir, ['req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${commonName}`]);
  writeFileSync(
    join(dir, 'leaf.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=DNS:${commonName},DNS:localhost,IP:127.0.0.1,IP:::1`,
    ].join('\n'),
  );
  openssl(dir, ['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2', '-extfile', 'leaf.ext']);
  const file = (name: string): string => join(dir, name);
  return {
    dir,
    caPem: readFileSync(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    certPem: readFileSync(file('leaf.pem'), 'utf8'),
    certFile: file('leaf.pem'),
    keyPem: readFileSync(file('leaf.key'), 'utf8'),
    keyFile: file('leaf.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
