/**
 * What ARCHITECTURE.md promises about the sources, checked on every run so that the map stays true:
 * each folder of @nomyo/core imports only the folders listed before it (and the root files); the
 * router imports core only through its `protocol` and `internal` entries; no source file is over
 * 300 lines; and nothing in the repository cites a document outside it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const coreSrc = join(repo, 'packages/core/src');

function files(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist' || name === '.git' || name === 'build' || name === 'prebuilds') return [];
    return statSync(path).isDirectory() ? files(path, keep) : keep(path) ? [path] : [];
  });
}

/** The folders of core's sources in ARCHITECTURE.md's order: each may import those before it. */
const ORDER = ['memory', 'crypto', 'protocol', 'keys', 'transport', 'client', 'cli'];
/** Leaves of protocol/ that import nothing of ours but the root files and one another: any folder may use them. */
const LEAVES = ['protocol/constants.ts', 'protocol/base64.ts', 'protocol/base64-bytes.ts'];

const folderOf = (path: string) => (path.includes('/') ? path.split('/')[0]! : '(root)');

describe('the architecture of @nomyo/core', () => {
  const sources = files(coreSrc, (p) => p.endsWith('.ts')).map((p) => relative(coreSrc, p));

  it('each folder imports only the folders before it, the root files, and protocol’s leaves', () => {
    const wrong: string[] = [];
    for (const file of sources) {
      const folder = folderOf(file);
      const text = readFileSync(join(coreSrc, file), 'utf8');
      for (const [, spec] of text.matchAll(/from '(\.[^']+)'/g)) {
        const target = relative(coreSrc, join(coreSrc, file, '..', spec!)).replace(/\.js$/, '.ts');
        const to = folderOf(target);
        if (to === folder || LEAVES.includes(target)) continue;
        const allowed = folder === '(root)' ? true : to === '(root)' ? !['index.ts', 'protocol.ts', 'internal.ts'].includes(target) : ORDER.indexOf(to) < ORDER.indexOf(folder);
        if (!allowed) wrong.push(`${file} imports ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the leaves import nothing of ours but the root files and one another', () => {
    const leafNames = LEAVES.map((leaf) => leaf.replace(/^protocol\/(.*)\.ts$/, './$1.js'));
    for (const leaf of LEAVES) {
      const imports = [...readFileSync(join(coreSrc, leaf), 'utf8').matchAll(/from '(\.[^']+)'/g)].map((m) => m[1]);
      expect(imports.every((spec) => /^\.\.\/(errors|node-buffer)\.js$/.test(spec!) || leafNames.includes(spec!)), leaf).toBe(true);
    }
  });

  it('the router imports core only through @nomyo/core/protocol and @nomyo/core/internal', () => {
    const server = files(join(repo, 'packages/server/src'), (p) => p.endsWith('.ts'));
    const entries = server.flatMap((p) => [...readFileSync(p, 'utf8').matchAll(/from '(@nomyo\/core[^']*)'/g)].map((m) => m[1]));
    expect(new Set(entries)).toEqual(new Set(['@nomyo/core/protocol', '@nomyo/core/internal']));
  });
});

describe('the repository', () => {
  it('has no source file over 300 lines in packages/*/src', () => {
    const long = ['core', 'server']
      .flatMap((pkg) => files(join(repo, 'packages', pkg, 'src'), (p) => p.endsWith('.ts')))
      .map((p) => [relative(repo, p), readFileSync(p, 'utf8').split('\n').length] as const)
      .filter(([, lines]) => lines > 300);
    expect(long).toEqual([]);
  });

  it('cites no document outside itself (a clone has no ../shared/)', () => {
    const self = fileURLToPath(import.meta.url);
    const text = files(repo, (p) => /\.(ts|mts|mjs|js|cc|md|json|yml|yaml)$/.test(p) && !p.includes('/.changeset/') && p !== self);
    const citing = text.filter((p) => /\.\.\/shared\/|PROTOCOL(-v2)?(-stream)?\.md/.test(readFileSync(p, 'utf8'))).map((p) => relative(repo, p));
    expect(citing).toEqual([]);
  });
});
