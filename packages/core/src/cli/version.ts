/** The version of @nomyo/core, for `nomyo --version`: from its package.json beside dist/ (and src/). Node.js only, as the CLI is. */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : 'unknown';
}
