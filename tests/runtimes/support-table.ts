/**
 * The README's "Supported runtimes" table, read for the tests that check it against what they ran:
 * tests/runtimes (the server runtimes) and tests/browser (the engines and their versions).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One row: the version cell as written (backticks removed), and the yes/no of the other two. */
export interface SupportRow {
  version: string;
  native: string;
  keyFiles: string;
}

/** First cell -> the rest of its row. Throws when the README has no such section. */
export function supportTable(): Map<string, SupportRow> {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Supported runtimes\n'));
  if (!section) throw new Error('README.md has no "## Supported runtimes" section');
  const rows = section.split('\n').filter((line) => line.startsWith('|')).slice(2); // after the header and |---|
  const yesNo = (cell: string) => /^(yes|no)\b/.exec(cell)?.[1] ?? cell;
  return new Map(
    rows.map((line) => {
      const [name, version, native, keyFiles] = line.split('|').slice(1, -1).map((cell) => cell.trim().replaceAll('`', ''));
      return [name!, { version: version!, native: yesNo(native!), keyFiles: yesNo(keyFiles!) }];
    }),
  );
}
