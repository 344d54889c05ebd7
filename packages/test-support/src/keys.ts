/** The test vectors' router key as an operator keeps a router's key file. */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test-vectors/v1/keys/server_4096.pem, as the repository has it (a checkout makes it 0644). */
export const VECTOR_KEY_PEM_FILE = fileURLToPath(new URL('../../../test-vectors/v1/keys/server_4096.pem', import.meta.url));

/**
 * A copy of `file` that only its owner may read (mode 0600), as a router's key file should be: the
 * router warns of one that others may read, as a checkout's 0644 vector is. Named by its content in
 * the temp directory, made once (whole or not at all) and shared by every test process.
 */
export function ownerOnlyCopy(file: string): string {
  const bytes = readFileSync(file);
  const copy = join(tmpdir(), `nomyo-test-key-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.pem`);
  if (!existsSync(copy)) {
    const partial = `${copy}.${process.pid}.partial`;
    writeFileSync(partial, bytes, { mode: 0o600 });
    renameSync(partial, copy);
  }
  chmodSync(copy, 0o600);
  return copy;
}

/** The vector router key as a 0600 key file: what tests give a router as `keyFile` or `--key-file`. */
export const VECTOR_KEY_FILE = ownerOnlyCopy(VECTOR_KEY_PEM_FILE);
