/**
 * `changeset status`: a change to a package without a changeset fails the suite, so that no change
 * users see leaves without its line in the changelog and its version bump.
 *
 * Compared with what (`--since`): the first of
 * 1. `NOMYO_CHANGESET_BASE`, when set: CI sets it to the branch a pull request goes into;
 * 2. `origin/main`, when HEAD is a branch that is not on it yet (a developer's work);
 * 3. the first commit;
 * then, if the last release is later than that, the last release: the last commit that deleted
 * changesets and bumped a version, which is what `changeset version` commits (so its own pull
 * request passes, having none).
 * On a clean clone of main (what .ci/run tests) HEAD is on `origin/main`: the packages changed since
 * the last release must have changesets waiting for the next one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const CHANGESET = join(repo, 'node_modules/@changesets/cli/bin.js');

function git(cwd: string, ...args: string[]): string | undefined {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The ref to compare with, and why it was chosen (see the header). */
export function changesetBase(cwd: string, env: NodeJS.ProcessEnv = process.env): { ref: string; why: string } {
  let base: { ref: string; why: string };
  if (env.NOMYO_CHANGESET_BASE) base = { ref: env.NOMYO_CHANGESET_BASE, why: 'NOMYO_CHANGESET_BASE' };
  else if (git(cwd, 'rev-parse', '--verify', '--quiet', 'origin/main') !== undefined && git(cwd, 'merge-base', '--is-ancestor', 'HEAD', 'origin/main') === undefined) {
    base = { ref: 'origin/main', why: 'a branch not yet on origin/main' };
  } else {
    const root = git(cwd, 'rev-list', '--max-parents=0', 'HEAD')?.split('\n')[0];
    if (!root) {
      const why = spawnSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).stderr.trim();
      throw new Error(`changeset status needs the git history of ${cwd}: ${why || 'no commit'}`);
    }
    base = { ref: root, why: 'the first commit' };
  }
  const release = lastRelease(cwd);
  if (release && git(cwd, 'merge-base', '--is-ancestor', base.ref, release) !== undefined && git(cwd, 'rev-parse', base.ref) !== release) {
    return { ref: release, why: 'the last release (changesets consumed)' };
  }
  return base;
}

/** The last commit that consumed changesets and bumped a version: what `changeset version` commits. */
function lastRelease(cwd: string): string | undefined {
  const consumed = git(cwd, 'log', '--diff-filter=D', '--format=%H', '--', '.changeset/*.md', ':!.changeset/README.md');
  return consumed?.split('\n').find((sha) => sha && /^[-+]\s*"version":/m.test(git(cwd, 'show', '--format=', sha, '--', '*package.json') ?? ''));
}

function status(cwd: string, since: string): { code: number | null; output: string } {
  const r = spawnSync(process.execPath, [CHANGESET, 'status', `--since=${since}`], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('changesets', () => {
  it('every package changed since the base has a changeset pending', () => {
    const base = changesetBase(repo);
    const { code, output } = status(repo, base.ref);
    expect(code, `changeset status --since=${base.ref} (${base.why}):\n${output}`).toBe(0);
  });

  it('the next release bumps each package as its changesets ask: no major that none asked for (a peer dependency bumped)', () => {
    // Changesets gives a major to what peer-depends on a package bumped past the peer range: core's
    // optional peer @nomyo/native took core from 0.1.0 to 1.0.0 (.changeset/config.json, core's range).
    const out = join(mkdtempSync(join(tmpdir(), 'nomyo-release-plan-')), 'plan.json');
    try {
      const r = spawnSync(process.execPath, [CHANGESET, 'status', `--output=${out}`], { cwd: repo, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      expect(r.status, r.stderr).toBe(0);
      const plan = JSON.parse(readFileSync(out, 'utf8')) as { changesets: { releases: { name: string; type: string }[] }[]; releases: { name: string; type: string }[] };
      const asked = new Map<string, string>();
      const rank = ['none', 'patch', 'minor', 'major'];
      for (const { releases } of plan.changesets) {
        for (const { name, type } of releases) if (rank.indexOf(type) > rank.indexOf(asked.get(name) ?? 'none')) asked.set(name, type);
      }
      expect(Object.fromEntries(plan.releases.filter((r) => r.type !== 'none').map((r) => [r.name, r.type]))).toEqual(Object.fromEntries(asked));
    } finally {
      rmSync(dirname(out), { recursive: true, force: true });
    }
  });

  describe('the check itself, in a repository of its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nomyo-changesets-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const commit = (message: string) => {
      execFileSync('git', ['add', '-A'], { cwd: dir });
      execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-qm', message], { cwd: dir });
      return git(dir, 'rev-parse', 'HEAD')!;
    };

    it('fails a package change without a changeset, passes it with one, and counts from the last release', () => {
      execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: dir });
      mkdirSync(join(dir, '.changeset'));
      mkdirSync(join(dir, 'packages/a'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'root', private: true, workspaces: ['packages/*'] }));
      writeFileSync(join(dir, 'packages/a/package.json'), JSON.stringify({ name: 'a', version: '1.0.0' }, null, 2));
      writeFileSync(join(dir, '.changeset/config.json'), JSON.stringify({ baseBranch: 'main', changelog: false, commit: false, access: 'public' }));
      const first = commit('the first commit');
      expect(changesetBase(dir, {})).toEqual({ ref: first, why: 'the first commit' });

      writeFileSync(join(dir, 'packages/a/index.js'), 'export const changed = true;\n');
      commit('a change users see');
      const without = status(dir, first);
      expect(without.code).toBe(1);
      expect(without.output).toContain('Some packages have been changed but no changesets were found');

      writeFileSync(join(dir, '.changeset/a-changed.md'), '---\n"a": patch\n---\n\nA changed.\n');
      commit('its changeset');
      expect(status(dir, first)).toMatchObject({ code: 0 });

      // `changeset version` consumes the changesets: the release is the base from then on.
      rmSync(join(dir, '.changeset/a-changed.md'));
      writeFileSync(join(dir, 'packages/a/package.json'), JSON.stringify({ name: 'a', version: '1.0.1' }, null, 2));
      const release = commit('release a@1.0.1');
      expect(changesetBase(dir, {})).toEqual({ ref: release, why: 'the last release (changesets consumed)' });
      expect(status(dir, release)).toMatchObject({ code: 0 });
      writeFileSync(join(dir, 'packages/a/index.js'), 'export const changed = 2;\n');
      commit('a change after the release');
      expect(status(dir, release).code).toBe(1);
    });
  });
});
