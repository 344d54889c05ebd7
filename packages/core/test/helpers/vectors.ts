/** The protocol vectors, vendored in the repo under test-vectors/ (made by independent implementations: see the README of each folder there). */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const VECTORS_DIR = fileURLToPath(new URL('../../../../test-vectors/', import.meta.url));

export interface Vector {
  file: string;
  description: string;
  private_key: string;
  expect: 'ok' | 'reject';
  plaintext_utf8?: string;
  plaintext_sha256?: string;
  package: unknown;
}

export function readVectors(kind: 'valid' | 'invalid'): Vector[] {
  const dir = `${VECTORS_DIR}v1/${kind}/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, ...(JSON.parse(readFileSync(dir + file, 'utf8')) as Omit<Vector, 'file'>) }));
}

export function readVectorText(path: string): string {
  return readFileSync(`${VECTORS_DIR}${path}`, 'utf8');
}
