/**
 * The API reference (`pnpm run docs`: TypeDoc, typedoc.json) builds from the public entry points of
 * @nomyo/core and @nomyo/server with no warning at all: every public export is documented
 * (`validation.notDocumented`), every type a public signature names is public too
 * (`notExported`), and every `{@link}` resolves. `@nomyo/core/internal` is not public API
 * (ARCHITECTURE.md) and is left out. Built into a temporary directory, so `docs/api/` is untouched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const json = (file: string) => JSON.parse(readFileSync(join(repo, file), 'utf8')) as Record<string, unknown>;

/** The entries a package publishes, as source files: `./protocol` -> `src/protocol.ts`. */
function publicEntries(pkg: string): string[] {
  const exports = json(`packages/${pkg}/package.json`).exports as Record<string, unknown>;
  return Object.keys(exports)
    .filter((entry) => entry !== './package.json' && entry !== './internal')
    .map((entry) => (entry === '.' ? 'src/index.ts' : `src/${entry.slice(2)}.ts`))
    .sort();
}

describe('the API reference', () => {
  const out = mkdtempSync(join(tmpdir(), 'nomyo-api-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each(['core', 'server'])("covers every public entry point of @nomyo/%s's package.json", (pkg) => {
    const entryPoints = (json(`packages/${pkg}/typedoc.json`).entryPoints as string[]).slice().sort();
    expect(entryPoints).toEqual(publicEntries(pkg));
  });

  it('builds with no warning: every public export documented, every link resolved', () => {
    const r = spawnSync(process.execPath, [join(repo, 'node_modules/typedoc/bin/typedoc'), '--out', out], {
      cwd: repo,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    const output = `${r.stdout}${r.stderr}`;
    expect(output.split('\n').filter((line) => /\[(warning|error)\]/.test(line))).toEqual([]);
    expect(r.status, output).toBe(0);
    for (const page of ['index.html', 'modules/_nomyo_core._nomyo_core.html', 'modules/_nomyo_core._nomyo_core_protocol.html', 'modules/_nomyo_server.html']) {
      expect(existsSync(join(out, page)), page).toBe(true);
    }
  });
});
