/**
 * Vitest's global setup: builds dist/ once before any test file runs, so the tests that spawn the
 * nomyo-server binary (cli*.test.ts) check the current source, and no build runs while one of them
 * spawns it.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const packageDir = fileURLToPath(new URL('..', import.meta.url));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: packageDir, stdio: 'pipe' });
}
