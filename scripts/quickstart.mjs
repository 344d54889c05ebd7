#!/usr/bin/env node
// The README's first command (`npm run quickstart`) on a fresh machine with only Node and npm:
// installs the pinned pnpm, installs from the frozen lockfile (building @nomyo/native from
// source against this machine's Node headers), builds everything, runs the demo, and finds (or,
// as root with apt-get, installs) the browsers and the nginx that `pnpm test` drives.
import { execSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { systemPackagesStep } from './system-packages.mjs';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const run = (cmd, env = {}) => execSync(cmd, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
const quiet = (cmd) => {
  try {
    return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return '';
  }
};

if (quiet('pnpm --version') !== pinned) run(`npm install -g pnpm@${pinned}`);

// node-gyp must not download headers (closed networks); pnpm does not pass npm's nodedir.
const env = {};
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;

run('pnpm install --frozen-lockfile', env);
run('pnpm build', env);
run('pnpm start', env);

// Last, so that what is missing is the last thing printed. Not an error here: the library and the
// demo work without browsers or nginx; `pnpm test` fails on them with the same message.
systemPackagesStep();
