/**
 * The programs the test suite takes from the system rather than from npm, in one place: which
 * programs each group of tests needs, where they are looked for, which variable points the tests at
 * another copy, and which Debian packages provide them. The quickstart (`systemPackagesStep`)
 * installs what is missing when it can; the tests (`findNeed`) fail with the same install command
 * when something is still missing.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** WebKitGTK puts MiniBrowser beside its libraries (Debian: /usr/lib/<arch>/, Fedora: /usr/libexec/), not on PATH. */
function miniBrowserPaths() {
  const dirs = ['/usr/libexec'];
  try {
    for (const entry of readdirSync('/usr/lib')) if (entry.endsWith('-linux-gnu')) dirs.push(path.join('/usr/lib', entry));
  } catch {
    // no /usr/lib: not a Linux system
  }
  return dirs.flatMap((dir) => ['webkit2gtk-4.1', 'webkit2gtk-4.0'].map((api) => path.join(dir, api, 'MiniBrowser')));
}

/**
 * Need name -> the tests that need it and the programs it is made of. A candidate without a slash
 * is looked up on PATH. MiniBrowser comes with libwebkit2gtk, which webkit2gtk-driver depends on.
 * WebKitGTK has no headless mode, so MiniBrowser draws into a virtual X display (Xvfb). Debian puts
 * nginx in /usr/sbin, which is not on a normal user's PATH.
 */
export const NEEDS = {
  chromium: {
    title: 'Chromium',
    usedBy: 'the browser tests',
    programs: [{ name: 'chromium', env: 'NOMYO_CHROMIUM', candidates: () => ['chromium', 'chromium-browser'], aptPackage: 'chromium' }],
  },
  firefox: {
    title: 'Firefox',
    usedBy: 'the browser tests',
    programs: [{ name: 'firefox', env: 'NOMYO_FIREFOX', candidates: () => ['firefox-esr', 'firefox'], aptPackage: 'firefox-esr' }],
  },
  webkit: {
    title: 'WebKit',
    usedBy: 'the browser tests',
    programs: [
      { name: 'WebKitWebDriver', env: 'NOMYO_WEBKIT_DRIVER', candidates: () => ['WebKitWebDriver'], aptPackage: 'webkit2gtk-driver' },
      { name: 'MiniBrowser', env: 'NOMYO_WEBKIT_BROWSER', candidates: miniBrowserPaths, aptPackage: 'webkit2gtk-driver' },
      { name: 'Xvfb', env: 'NOMYO_XVFB', candidates: () => ['Xvfb'], aptPackage: 'xvfb' },
    ],
  },
  nginx: {
    title: 'nginx',
    usedBy: 'the nginx tests',
    programs: [{ name: 'nginx', env: 'NOMYO_NGINX', candidates: () => ['nginx', '/usr/sbin/nginx'], aptPackage: 'nginx' }],
  },
};

/** Every need, in the order the quickstart reports them. */
export const NEED_NAMES = /** @type {(keyof typeof NEEDS)[]} */ (Object.keys(NEEDS));

function isExecutableFile(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function resolveProgram(candidate, env) {
  if (candidate.includes('/')) return isExecutableFile(candidate) ? candidate : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutableFile(path.join(dir, candidate))) return path.join(dir, candidate);
  }
  return undefined;
}

const isRoot = () => process.getuid?.() === 0;

/** The command that installs `packages` on Debian or Ubuntu (with sudo unless we are root). */
export function aptInstallCommand(packages, root = isRoot()) {
  const sudo = root ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y ${[...new Set(packages)].join(' ')}`;
}

/**
 * Looks for a need's programs: the variable when set (and then only there), else the usual places.
 * `paths` maps each found program's name to its path; `problem` explains what is missing and how to
 * install it or point the tests at it, or is undefined when nothing is.
 */
export function findNeed(name, env = process.env) {
  const need = NEEDS[name];
  if (!need) throw new Error(`unknown system package need ${name}; known: ${NEED_NAMES.join(', ')}`);
  const paths = {};
  const missing = [];
  for (const program of need.programs) {
    const override = env[program.env];
    const found = override ? resolveProgram(override, env) : program.candidates().map((c) => resolveProgram(c, env)).find(Boolean);
    if (found) paths[program.name] = found;
    else missing.push({ program, override });
  }
  if (missing.length === 0) return { name, title: need.title, paths, problem: undefined };
  const what = missing.map(({ program, override }) =>
    override
      ? `${program.env}=${override} is not an executable file`
      : `${program.name} not found (looked for ${program.candidates().join(', ')}; ${program.env}=/path/to/it points the tests at another copy)`,
  );
  const problem =
    `${need.title} is needed by ${need.usedBy}: ${what.join('; ')}. ` +
    `Install it with \`${aptInstallCommand(missing.map(({ program }) => program.aptPackage))}\` ` +
    '(Debian/Ubuntu; `npm run quickstart` does this when run as root), or point the variable named above at an installed copy.';
  return { name, title: need.title, paths, problem };
}

/**
 * The quickstart's system-packages step: finds every need (or those `names` lists); when some are
 * missing and we are root on a system with apt-get, installs their Debian packages in one apt-get
 * run and looks again. Returns the problems left (empty when everything is there); it never throws,
 * since the rest of the quick start still works.
 */
export function setUpSystemPackages({ names = NEED_NAMES, env = process.env, log = console.log, root = isRoot(), run = runInherit } = {}) {
  let results = names.map((name) => findNeed(name, env));
  let missing = results.filter((r) => r.problem);
  // A variable that points nowhere is the user's choice: installing packages would not fix it.
  const installable = missing.flatMap((r) => NEEDS[r.name].programs.filter((p) => !r.paths[p.name] && !env[p.env]));
  if (installable.length > 0 && root && resolveProgram('apt-get', env)) {
    const packages = [...new Set(installable.map((p) => p.aptPackage))];
    log(`system packages: installing Debian packages ${packages.join(' ')} for the tests`);
    try {
      const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
      run('apt-get', ['update', '-qq'], aptEnv);
      run('apt-get', ['install', '-y', '-qq', ...packages], aptEnv);
    } catch (err) {
      log(`system packages: apt-get failed (${err.message})`);
    }
    results = names.map((name) => findNeed(name, env));
    missing = results.filter((r) => r.problem);
  }
  for (const r of results.filter((r) => !r.problem)) log(`system packages: ${r.title}: ${Object.values(r.paths).join(', ')}`);
  return missing.map((r) => r.problem);
}

function runInherit(file, args, env) {
  execFileSync(file, args, { stdio: 'inherit', env });
}

/**
 * `setUpSystemPackages`, then a loud note of what is still missing. The quick start's last step, and
 * what `node scripts/system-packages.mjs` (or `node scripts/browsers.mjs`) runs on its own. Returns
 * whether everything is there.
 */
export function systemPackagesStep() {
  const problems = setUpSystemPackages();
  if (problems.length > 0) {
    console.error(['', '`pnpm test` will FAIL: some of its tests need programs that are not installed.', ...problems.map((p) => `- ${p}`), ''].join('\n'));
  }
  return problems.length === 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = systemPackagesStep() ? 0 : 1;
