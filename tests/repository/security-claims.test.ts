/**
 * SECURITY.md's implementation status, held to its tests: every ✅ row names at least one test file
 * (a link whose text is its path from the repository root) and, in “curly quotes” after it, words
 * of the title of a test or suite in that file (not of a comment or any string: a test's). A claim
 * whose file was renamed or removed, or whose test no longer says what the claim rests on, fails
 * here. ⚠️ rows may name tests too, and are held to them the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));

interface Proof {
  file: string;
  words: string[];
}
interface Claim {
  status: '✅' | '⚠️';
  claim: string;
  proofs: Proof[];
}

/** The rows of the table under "## Implementation status". */
export function parseClaims(markdown: string): Claim[] {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Implementation status\n'));
  if (!section) throw new Error('SECURITY.md has no "## Implementation status" section');
  return section
    .split('\n')
    .filter((line) => /^\| (✅|⚠️) \|/.test(line))
    .map((line) => {
      const [status, claim, proofCell] = line.split(' | ').map((cell) => cell.replace(/^\| ?| ?\|$/g, '').trim());
      const proofs: Proof[] = [];
      // [`path`](path) “words”, “more words”, [`other path`](other path) “words” …
      for (const part of (proofCell ?? '').split(/(?=\[`)/).filter((p) => p.trim())) {
        const link = /^\[`([^`]+)`\]\(([^)]+)\)/.exec(part);
        if (!link) throw new Error(`a proof that is not a link to a test file: ${part}`);
        if (link[1] !== link[2]) throw new Error(`a link whose text is not its target: ${link[0]}`);
        proofs.push({ file: link[1]!, words: [...part.matchAll(/“([^”]+)”/g)].map((m) => m[1]!) });
      }
      return { status: status as Claim['status'], claim: claim!, proofs };
    });
}

/**
 * The titles of a test file's tests and suites: each string literal that opens the arguments of
 * `it(`, `test(`, `describe(`, or of a curried form (`it.each(…)(`, `it.runIf(…)(`), escapes read.
 */
export function testTitles(source: string): string[] {
  const titles: string[] = [];
  for (const m of source.matchAll(/(?:\b(?:it|test|describe)|\))\s*\(\s*(['"`])/g)) {
    const quote = m[1]!;
    let title = '';
    for (let i = m.index + m[0].length; i < source.length && source[i] !== quote; i++) title += source[i] === '\\' ? source[++i] : source[i];
    titles.push(title);
  }
  return titles;
}

/** What is wrong with the claims: a ✅ without proof, a file that is not a test or is gone, words no test of a file has in its title. */
export function problems(claims: Claim[], read: (file: string) => string | undefined): string[] {
  const found: string[] = [];
  for (const { status, claim, proofs } of claims) {
    if (status === '✅' && proofs.length === 0) found.push(`✅ without a test: ${claim}`);
    for (const { file, words } of proofs) {
      if (!/\.test\.[cm]?[jt]s$/.test(file)) found.push(`${file} is not a test file (${claim})`);
      const text = read(file);
      if (text === undefined) {
        found.push(`${file} does not exist (${claim})`);
        continue;
      }
      if (words.length === 0) found.push(`${file} is named without the words it must contain (${claim})`);
      const titles = testTitles(text);
      for (const w of words) if (!titles.some((title) => title.includes(w))) found.push(`${file} has no test titled with “${w}” (${claim})`);
    }
  }
  return found;
}

const readRepoFile = (file: string): string | undefined => {
  const path = join(repo, file);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
};

describe("SECURITY.md's implementation status", () => {
  const markdown = readFileSync(join(repo, 'SECURITY.md'), 'utf8');
  const claims = parseClaims(markdown);

  it('reads every ✅ and ⚠️ row of the table', () => {
    const rows = markdown.split('\n').filter((line) => /^\| (✅|⚠️) \|/.test(line));
    expect(claims).toHaveLength(rows.length);
    expect(claims.filter((c) => c.status === '✅').length).toBeGreaterThanOrEqual(30);
    expect(claims.some((c) => c.status === '⚠️')).toBe(true);
  });

  it('every test a row names exists, and a test there is still titled with the words the claim rests on', () => {
    expect(problems(claims, readRepoFile)).toEqual([]);
  });

  it('fails a claim whose test is gone, whose words changed or are in no title (a comment, a string), or that names no test', () => {
    const sample = [
      '## Implementation status',
      '| | claim | proved by |',
      '|---|---|---|',
      '| ✅ | gone | [`tests/nowhere.test.ts`](tests/nowhere.test.ts) “anything” |',
      '| ✅ | changed | [`tests/repository/security-claims.test.ts`](tests/repository/security-claims.test.ts) “MISSING” |',
      '| ✅ | in a comment | [`tests/repository/security-claims.test.ts`](tests/repository/security-claims.test.ts) “said in a comment, not a title” |',
      '| ✅ | unproven | |',
      '| ⚠️ | a limit | |',
    ].join('\n');
    // Here the file says it in a comment, not a title: said in a comment, not a title.
    // Built so that this file itself never contains the sample's missing words.
    const missing = ['words this file', 'does not hold'].join(' ');
    expect(problems(parseClaims(sample.replace('MISSING', missing)), readRepoFile)).toEqual([
      'tests/nowhere.test.ts does not exist (gone)',
      `tests/repository/security-claims.test.ts has no test titled with “${missing}” (changed)`,
      'tests/repository/security-claims.test.ts has no test titled with “said in a comment, not a title” (in a comment)',
      '✅ without a test: unproven',
    ]);
  });
});
