/**
 * The documents a newcomer and an auditor read: the README fits on a screen or two (at most 250
 * lines) and keeps the two commands CI runs (.ci/run), and every link between the repository's own
 * documents leads to a file that exists and, for a `#section`, to a heading it has.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(join(repo, file), 'utf8');

const README_MAX_LINES = 250;

/** The documents whose links are checked: the root's and docs/ (docs/api/ is build output). */
const DOCUMENTS = ['README.md', 'SECURITY.md', 'ARCHITECTURE.md', ...readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Markdown without its fenced code blocks, where `[x](y)` is code, not a link. */
const prose = (markdown: string) => markdown.replace(/^```[\s\S]*?^```/gm, '');

/** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens. */
export function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  return new Set([...prose(markdown).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));
}

/** Every relative link of `file` that does not resolve: a missing file, or a heading it lacks. */
function brokenLinks(file: string, text = read(file)): string[] {
  const broken: string[] = [];
  for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
    const [path, hash] = target!.split('#') as [string, string | undefined];
    const resolved = path === '' ? file : relative(repo, join(repo, dirname(file), path));
    if (!existsSync(join(repo, resolved))) {
      broken.push(`${file}: ${target} (no ${resolved})`);
      continue;
    }
    if (hash !== undefined && resolved.endsWith('.md') && !anchorsOf(read(resolved)).has(hash)) broken.push(`${file}: ${target} (no such heading)`);
  }
  return broken;
}

describe('the README', () => {
  const readme = read('README.md');

  it(`is at most ${README_MAX_LINES} lines`, () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('keeps the two commands CI runs on a clean clone, as .ci/run runs them', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/^npm run quickstart$/m);
    expect(ci).toMatch(/^pnpm test 2>&1/m);
    expect(readme).toMatch(/^npm run quickstart +# /m);
    expect(readme).toMatch(/^pnpm test +# /m);
  });

  it('links to SECURITY.md and to every document in docs/', () => {
    for (const doc of ['SECURITY.md', ...DOCUMENTS.filter((d) => d.startsWith('docs/'))]) expect(readme, doc).toContain(`](${doc}`);
  });
});

describe('links between the documents', () => {
  it.each(DOCUMENTS)('%s: every relative link resolves, sections included', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });

  it('are checked for real: a missing file and a missing section are reported', () => {
    expect(anchor('TLS, the key file and API keys')).toBe('tls-the-key-file-and-api-keys');
    expect(anchor('Large payloads: figures (`pnpm bench e2e`, `stages`)')).toBe('large-payloads-figures-pnpm-bench-e2e-stages');
    const text = '[a](docs/nowhere.md) [b](SECURITY.md#no-such-section) [c](SECURITY.md#threat-model) [d](#quick-start)\n```\n[e](in/code.md)\n```';
    expect(brokenLinks('README.md', text)).toEqual(['README.md: docs/nowhere.md (no docs/nowhere.md)', 'README.md: SECURITY.md#no-such-section (no such heading)']);
  });
});
