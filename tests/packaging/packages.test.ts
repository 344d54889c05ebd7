/**
 * The packages as users get them: @nomyo/core, @nomyo/native (with a prebuildify build for this
 * platform inside, as release.yml publishes it) and @nomyo/server packed with `pnpm pack`, installed
 * with npm into an empty project outside the workspace with no compiler on PATH, and used there:
 * the addon must come from the prebuild, and the `nomyo` and `nomyo-server` bins must work. The
 * packed core and server must also type-check for ESM consumers (arethetypeswrong), and a user's
 * TypeScript must compile against them, strict, with openai's types, with and without lib "DOM".
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);
const ATTW = require.resolve('@arethetypeswrong/cli/package.json').replace(/package\.json$/, 'dist/index.js');
const TSC = require.resolve('typescript/bin/tsc');

/** Runs a command; on failure the error carries its output. */
async function run(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  try {
    return await execFileAsync(file, args, { ...options, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${(err as Error).message}\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

let work: string;
let dist: string;
let app: string;
/** The user's environment: PATH holds node, npm and sh only (no cc, c++, make or python). */
let userEnv: NodeJS.ProcessEnv;
let server: ChildProcess | undefined;
let serverUrl: string;
const tarball = (name: string) => join(dist, readdirSync(dist).find((file) => file.startsWith(`nomyo-${name}-`))!);

/** pnpm pack of a package directory into `destination`; returns the tarball path. */
async function pack(dir: string, destination: string): Promise<string> {
  const { stdout } = await run('pnpm', ['pack', '--pack-destination', destination], { cwd: dir });
  return stdout.trim().split('\n').at(-1)!;
}

/** @nomyo/native's tarball, unpacked, with a prebuild for this platform added, packed again. */
async function packNativeWithPrebuild(): Promise<void> {
  const unpacked = join(work, 'native');
  mkdirSync(unpacked);
  const raw = await pack(join(repo, 'native'), join(work, 'native-raw'));
  await run('tar', ['-xzf', raw, '-C', unpacked, '--strip-components=1'], { cwd: work });
  // node-addon-api and prebuildify, as the workspace installed them for the package.
  symlinkSync(join(repo, 'native', 'node_modules'), join(unpacked, 'node_modules'));
  // The package's own script, run by npm, which puts its node-gyp on PATH. Headers: this Node's
  // own when installed beside it (no download), as scripts/install.cjs does; Node-API keeps the
  // build good for every later Node.
  const prefix = dirname(dirname(process.execPath));
  const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
  const libc = process.platform === 'linux' ? ['--tag-libc'] : []; // as .github/workflows/prebuild.yml names them
  await run('npm', ['run', 'prebuildify', '--', ...libc, '--target', process.versions.node], {
    cwd: unpacked,
    env: { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) },
  });
  rmSync(join(unpacked, 'node_modules'));
  rmSync(join(unpacked, 'build'), { recursive: true, force: true });
  await pack(unpacked, dist);
}

/** Starts the installed nomyo-server bin and reads its URL from the first line it prints. */
async function startInstalledServer(): Promise<string> {
  server = spawn(join(app, 'node_modules', '.bin', 'nomyo-server'), ['--port', '0', '--key-size', '2048', '--quiet'], { cwd: app, env: userEnv });
  const lines = createInterface({ input: server.stdout! });
  const exited = new Promise<never>((_, reject) => server!.once('exit', (code) => reject(new Error(`nomyo-server exited with ${code}`))));
  const first = new Promise<string>((resolve) => lines.once('line', resolve));
  const line = await Promise.race([first, exited]);
  const url = /^listening on (http:\/\/\S+)$/.exec(line)?.[1];
  if (!url) throw new Error(`unexpected first line from nomyo-server: ${line}`);
  return url;
}

describe('the packed packages, installed with npm outside the workspace', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nomyo-packages-'));
    dist = join(work, 'dist');
    app = join(work, 'app');
    const bin = join(work, 'bin');
    mkdirSync(app);
    mkdirSync(bin);
    await pack(join(repo, 'packages', 'core'), dist);
    await pack(join(repo, 'packages', 'server'), dist);
    await packNativeWithPrebuild();

    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(realpathSync(join(dirname(process.execPath), 'npm')), join(bin, 'npm'));
    symlinkSync('/bin/sh', join(bin, 'sh')); // npm runs install scripts with it
    userEnv = { HOME: process.env.HOME, TMPDIR: tmpdir(), PATH: bin, npm_config_cache: join(work, 'npm-cache'), npm_config_update_notifier: 'false' };
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', tarball('core'), tarball('native'), tarball('server')], { cwd: app, env: userEnv });
    serverUrl = await startInstalledServer();
  }, 300_000);

  afterAll(() => {
    server?.kill();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('each package carries the license it names (Apache-2.0), the repository\'s LICENSE', () => {
    const license = readFileSync(join(repo, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    for (const name of ['core', 'native', 'server']) {
      const installed = join(app, 'node_modules', '@nomyo', name);
      expect(JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).license).toBe('Apache-2.0');
      expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toBe(license);
    }
  });

  it('had no compiler to fall back on', async () => {
    const probe = await execFileAsync('/bin/sh', ['-c', 'command -v cc c++ gcc g++ make python3 python'], { env: userEnv }).catch((err: { stdout: string }) => err);
    expect(probe.stdout).toBe('');
  });

  it('loads @nomyo/native from the prebuild, and core uses it for a real request', async () => {
    const installed = join(app, 'node_modules', '@nomyo', 'native');
    expect(existsSync(join(installed, 'build'))).toBe(false); // nothing was compiled at install
    copyFileSync(fileURLToPath(new URL('./app-check.mjs', import.meta.url)), join(app, 'check.mjs'));
    const { stdout } = await run('node', ['check.mjs', serverUrl], { cwd: app, env: userEnv });
    const result = JSON.parse(stdout) as { content: string; protection: { kind: string; reason: string }; addons: string[] };
    expect(result.content).toBe('echo: hello from the packed packages');
    expect(result.protection).toMatchObject({ kind: 'native', reason: expect.stringMatching(/^@nomyo\/native 0\.\d+\.\d+ \(/) });
    expect(result.addons.map((file) => realpathSync(file))).toEqual([
      expect.stringMatching(new RegExp(`^${realpathSync(installed)}/prebuilds/${process.platform}-${process.arch}/[^/]+\\.node$`)),
    ]);
  });

  it('the nomyo bin: chat through the installed router, and key files', async () => {
    const nomyo = join(app, 'node_modules', '.bin', 'nomyo');
    const chat = await run(nomyo, ['chat', 'hello from the nomyo bin', '--url', serverUrl, '--allow-http'], { cwd: app, env: userEnv });
    expect(chat.stdout).toBe('echo: hello from the nomyo bin\n');
    expect(chat.stderr).toMatch(/memory: native \(@nomyo\/native /);

    const generated = await run(nomyo, ['keys', 'generate', '--dir', 'keys', '--size', '2048', '--no-password'], { cwd: app, env: userEnv });
    expect(readdirSync(join(app, 'keys')).sort()).toEqual(['private_key.pem', 'public_key.pem']);
    const printed = await run(nomyo, ['keys', 'fingerprint', '--dir', 'keys'], { cwd: app, env: userEnv });
    const fingerprint = /[0-9a-f]{64}/.exec(printed.stdout)?.[0];
    expect(fingerprint).toBeDefined();
    expect(generated.stdout).toContain(fingerprint);
  });

  it.each([
    ['with lib "DOM"', ['es2022', 'dom']],
    ['without lib "DOM" (@types/node alone)', ['es2022']],
  ])('a TypeScript user compiles against the installed types, strict, %s: openai\'s own param types, interfaces of their own (consumer-types.ts)', async (_, lib) => {
    // openai and @types/node as the workspace has them: the user's own dependencies.
    const own = { openai: join(repo, 'tests', 'node_modules', 'openai'), '@types/node': join(repo, 'node_modules', '@types', 'node') };
    for (const [name, from] of Object.entries(own)) {
      const to = join(app, 'node_modules', name);
      if (existsSync(to)) continue;
      mkdirSync(dirname(to), { recursive: true });
      symlinkSync(realpathSync(from), to);
    }
    copyFileSync(fileURLToPath(new URL('./consumer-types.ts', import.meta.url)), join(app, 'consumer-types.ts'));
    const compilerOptions = { strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, target: 'es2022', module: 'node16', moduleResolution: 'node16', noEmit: true, lib, types: ['node'] };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer-types.ts'] }));
    const { stdout } = await run(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: app, env: userEnv });
    expect(stdout).toBe('');
  });

  it.each(['core', 'server'])('@nomyo/%s: no file points to a source map the package does not ship (bundlers warn of each)', (name) => {
    const root = join(app, 'node_modules', '@nomyo', name, 'dist');
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((file) => /\.(js|d\.ts)$/.test(file));
    expect(files.length).toBeGreaterThan(10);
    const dangling = files.filter((file) => {
      const map = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(root, file), 'utf8'))?.[1];
      return map !== undefined && !existsSync(join(root, dirname(file), map));
    });
    expect(dangling).toEqual([]);
  });

  it.each(['core', 'server'])('@nomyo/%s: ESM and types resolve under node16 and bundler (arethetypeswrong)', async (name) => {
    // esm-only: the packages ship no CommonJS, so the node10 and node16-from-CJS columns are ignored.
    const { stdout } = await run(process.execPath, [ATTW, tarball(name), '--profile', 'esm-only', '--format', 'json'], { cwd: work });
    const { analysis, problems } = JSON.parse(stdout) as {
      analysis: { entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string } }> }> };
      problems: Record<string, { resolutionKind?: string }[]>;
    };
    const counted = Object.values(problems).flat().filter((p) => p.resolutionKind !== 'node10' && p.resolutionKind !== 'node16-cjs');
    expect(counted).toEqual([]);
    expect(Object.keys(analysis.entrypoints)).toContain('.');
    for (const [entry, { resolutions }] of Object.entries(analysis.entrypoints)) {
      if (entry === './package.json') continue;
      for (const kind of ['node16-esm', 'bundler']) expect(resolutions[kind]?.resolution?.fileName, `${entry} under ${kind}`).toMatch(/\.d\.ts$/);
    }
  });
});
