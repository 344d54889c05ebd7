/** The test vectors' router key as an operator keeps a router's key file. */
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test-vectors/v1/keys/server_4096.pem, as the repository has it (a checkout makes it 0644). */
export const VECTOR_KEY_PEM_FILE = fileURLToPath(new URL('../../../test-vectors/v1/keys/server_4096.pem', import.meta.url));

/**
 * A copy of `file` that only its owner may read (mode 0600), as a router's key file should be: the
 * router warns of one that others may read, as a checkout's 0644 vector is. In a temp directory of
 * this process's own (no other user's or run's file is ever taken for it), removed at its exit.
 */
export function ownerOnlyCopy(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nomyo-test-key-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'key.pem');
  copyFileSync(file, copy);
  chmodSync(copy, 0o600);
  return copy;
}

/** The vector router key as a 0600 key file: what tests give a router as `keyFile` or `--key-file`. */
export const VECTOR_KEY_FILE = ownerOnlyCopy(VECTOR_KEY_PEM_FILE);
