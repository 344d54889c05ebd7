/**
 * The quickstart's system-packages step (scripts/system-packages.mjs): as root with apt-get it
 * installs what the browser and nginx tests need in one apt-get run; otherwise it installs nothing
 * and says what to install. apt-get is never run here: the step gets a recorder.
 */
import { accessSync, constants } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aptInstallCommand, setUpSystemPackages } from '../../scripts/system-packages.mjs';

let aptBin: string; // a PATH with only an apt-get on it
let emptyBin: string;

beforeAll(async () => {
  aptBin = await mkdtemp(path.join(tmpdir(), 'nomyo-apt-'));
  emptyBin = await mkdtemp(path.join(tmpdir(), 'nomyo-empty-'));
  await writeFile(path.join(aptBin, 'apt-get'), '#!/bin/sh\nexit 1\n');
  await chmod(path.join(aptBin, 'apt-get'), 0o755);
});
afterAll(async () => {
  await rm(aptBin, { recursive: true, force: true });
  await rm(emptyBin, { recursive: true, force: true });
});

/** Debian's nginx sits at a fixed path, off a user's PATH: the step finds it there when it is installed. */
function debianNginxInstalled(): boolean {
  try {
    accessSync('/usr/sbin/nginx', constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

describe('the quickstart system-packages step', () => {
  it('as root with apt-get: updates once and installs every missing package, browsers and nginx, in one run', () => {
    const commands: string[] = [];
    const problems = setUpSystemPackages({ env: { PATH: aptBin }, root: true, log: () => {}, run: (file, args) => void commands.push([file, ...args].join(' ')) });
    expect(commands[0]).toBe('apt-get update -qq');
    expect(commands).toHaveLength(2);
    // MiniBrowser and nginx sit at fixed paths, not on PATH, so they may be there already; the rest is not.
    const nginx = debianNginxInstalled() ? '' : ' nginx';
    expect(commands[1]).toBe(`apt-get install -y -qq chromium firefox-esr webkit2gtk-driver xvfb${nginx}`);
    // The recorder installed nothing: everything is still missing.
    expect(problems).toHaveLength(nginx ? 4 : 3);
  });

  it('otherwise installs nothing and says what to install', () => {
    const commands: string[] = [];
    const problems = setUpSystemPackages({ env: { PATH: aptBin }, root: false, log: () => {}, run: (file) => void commands.push(file) });
    expect(commands).toEqual([]);
    expect(problems.join('\n')).toMatch(/apt-get update && (sudo )?apt-get install -y chromium`/);
    // sudo in the command unless the reader is root already.
    expect(aptInstallCommand(['xvfb', 'webkit2gtk-driver', 'xvfb'], false)).toBe('sudo apt-get update && sudo apt-get install -y xvfb webkit2gtk-driver');
    expect(aptInstallCommand(['nginx'], true)).toBe('apt-get update && apt-get install -y nginx');
  });

  it('does not install over a variable that points nowhere', () => {
    const commands: string[] = [];
    const env = {
      PATH: `${aptBin}${path.delimiter}${process.env.PATH}`,
      NOMYO_CHROMIUM: path.join(emptyBin, 'chromium'),
      NOMYO_NGINX: path.join(emptyBin, 'nginx'),
    };
    const problems = setUpSystemPackages({ env, root: true, log: () => {}, run: (file) => void commands.push(file) });
    expect(problems).toEqual([expect.stringContaining('NOMYO_CHROMIUM='), expect.stringContaining('NOMYO_NGINX=')]);
    expect(commands).toEqual([]); // Firefox and WebKit are installed on this machine: nothing to do
  });
});
